export * from './keys';
export * from './storage-driver';
export * from './fs-driver';
export * from './storage';
