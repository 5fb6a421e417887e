// Types for s3rver 3.7.1 (it ships none): the public class, and the parts of its filesystem store
// that s3-server.process.ts patches. Pinned with the package: its internals change between versions.
declare module 's3rver' {
  import type { AddressInfo } from 'node:net';
  import type { Readable } from 'node:stream';

  export interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
    configureBuckets?: { name: string; configs?: (string | Buffer)[] }[];
  }

  export interface S3rverObject {
    bucket: string;
    key: string;
    content: Readable | Buffer | null;
    metadata: Record<string, string>;
  }

  export interface S3rverListResult {
    objects: S3rverObject[];
    commonPrefixes: string[];
    isTruncated: boolean;
  }

  export interface S3rverListOptions {
    delimiter?: string;
    startAfter?: string;
    prefix?: string;
    maxKeys?: number;
  }

  /** lib/stores/filesystem.js: an object is <dir>/<bucket>/<key>._S3rver_object beside its metadata files. */
  export interface FilesystemStore {
    rootDirectory: string;
    getBucketPath(bucket: string): string;
    getResourcePath(bucket: string, key: string | undefined, resource: string): string;
    getMetadata(bucket: string, key: string): Promise<Record<string, string>>;
    putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5?: string): Promise<void>;
    listObjects(bucket: string, options: S3rverListOptions): Promise<S3rverListResult>;
    putObject(object: S3rverObject): Promise<{ size: number; md5: string }>;
    copyObject(srcBucket: string, srcKey: string, destBucket: string, destKey: string, replacementMetadata: Record<string, string> | null): Promise<Record<string, string>>;
  }

  /** A Koa application. */
  export default class S3rver {
    constructor(options?: S3rverOptions);
    store: FilesystemStore;
    /** Koa's middleware stack (the router is last). */
    middleware: ((ctx: S3rverContext, next: () => Promise<void>) => Promise<void> | void)[];
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }

  export interface S3rverContext {
    method: string;
    path: string;
    query: Record<string, string | undefined>;
    status: number;
    body: unknown;
    store: FilesystemStore;
  }
}

declare module 's3rver/lib/models/object' {
  import type { S3rverObject } from 's3rver';
  const S3Object: new (bucket: string, key: string, content: null, metadata: Record<string, string>) => S3rverObject;
  export default S3Object;
}
