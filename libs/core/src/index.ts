export * from './app-error';
export * from './uuid';
