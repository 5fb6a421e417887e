// The product version, from the root package.json (the one users install).
// eslint-disable-next-line @nx/enforce-module-boundaries -- the workspace root is no project, but it owns the version
import rootPackage from '../../../package.json';

export const VERSION: string = rootPackage.version;
