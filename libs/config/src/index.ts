export * from './config';
export * from './config.schema';
export { VERSION } from './version';
