export * from './keys';
export * from './storage-driver';
export * from './fs-driver';
export * from './s3-driver';
export * from './storage';
