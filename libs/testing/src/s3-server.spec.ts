// The S3 test server: a real server that behaves like S3 where s3rver alone does not (key-ordered
// ListObjectsV2 pages with continuation tokens, whole-object writes, AbortMultipartUpload), and
// that leaves nothing behind.
import { existsSync } from 'node:fs';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestS3Server, startS3Server } from './s3-server';

describe('startS3Server', () => {
  let server: TestS3Server;
  let client: S3Client;
  beforeAll(async () => {
    server = await startS3Server({ bucket: 'helpers-bucket', label: 'helpers' });
    client = server.client();
  });
  afterAll(async () => {
    client?.destroy();
    await server?.stop();
  });

  const put = (Key: string, body = Key) => client.send(new PutObjectCommand({ Bucket: server.bucket, Key, Body: Buffer.from(body) }));

  it('serves an empty bucket on 127.0.0.1, with the variables that point 1688sync at it', async () => {
    expect(server.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await client.send(new ListObjectsV2Command({ Bucket: server.bucket }))).KeyCount).toBe(0);
    expect(server.env).toMatchObject({ STORAGE_DRIVER: 's3', S3_BUCKET: 'helpers-bucket', S3_ENDPOINT: server.endpoint, S3_FORCE_PATH_STYLE: 'true' });
    expect(server.env.PUBLIC_BASE_URL).toBe(`${server.endpoint}/helpers-bucket`);
  });

  it('lists in key order, page by page with continuation tokens, every key once', async () => {
    const keys = ['z/1', 'a/2', 'm/3', 'a/1', 'b', 'y/y/y', 'c/0', 'a/10'];
    for (const key of keys) await put(`order/${key}`);
    const listed: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: 'order/', MaxKeys: 3, ContinuationToken: token }));
      listed.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      pages++;
    } while (token);
    expect(listed).toEqual(keys.map((k) => `order/${k}`).sort());
    expect(pages).toBe(3);
  });

  it('keeps one whole object when the same key is written concurrently', async () => {
    const bodies = Array.from({ length: 6 }, (_, i) => String(i).repeat(200_000 + i));
    await Promise.all(bodies.map((body) => put('raced/key', body)));
    const object = await client.send(new GetObjectCommand({ Bucket: server.bucket, Key: 'raced/key' }));
    expect(bodies).toContain(await object.Body!.transformToString());
  });

  it('aborts a multipart upload, dropping its parts', async () => {
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: server.bucket, Key: 'mpu/key' }));
    await client.send(new UploadPartCommand({ Bucket: server.bucket, Key: 'mpu/key', UploadId, PartNumber: 1, Body: Buffer.alloc(1024) }));
    expect(await server.pendingMultipartUploads()).toBe(1);
    await client.send(new AbortMultipartUploadCommand({ Bucket: server.bucket, Key: 'mpu/key', UploadId }));
    expect(await server.pendingMultipartUploads()).toBe(0);
    await expect(client.send(new AbortMultipartUploadCommand({ Bucket: server.bucket, Key: 'mpu/key', UploadId }))).rejects.toMatchObject({ name: 'NoSuchUpload' });
  });

  it('backdates an object', async () => {
    await put('aged/key');
    await server.ageObject('aged/key', 48);
    const page = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: 'aged/' }));
    expect(page.Contents![0].LastModified!.getTime()).toBeLessThan(Date.now() - 47 * 3_600_000);
  });

  it('stops and removes its directory', async () => {
    const other = await startS3Server({ label: 'helpers-stop' });
    expect(existsSync(other.directory)).toBe(true);
    await other.stop();
    expect(existsSync(other.directory)).toBe(false);
    await expect(fetch(other.endpoint)).rejects.toThrow();
  });
});
