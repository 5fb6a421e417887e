// A real S3-compatible server for a test file: s3rver (see s3-server.process.ts for why it, and
// what is patched) in its own process, on a free port of 127.0.0.1, storing into a fresh temp
// directory with one empty bucket. stop() ends the process and removes the directory.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { childEnvironment } from '@1688sync/config';
import { REPO_ROOT } from './app-process';

/** s3rver's fixed account: it checks SigV4 signatures against these. */
const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';
const REGION = 'us-east-1';
const START_TIMEOUT_MS = 20_000;

export interface TestS3Server {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Where the server keeps its buckets. */
  directory: string;
  /**
   * The variables that point 1688sync at this server: STORAGE_DRIVER=s3, every S3_*, and
   * PUBLIC_BASE_URL at the bucket's own URL (s3rver serves objects anonymously, like a CDN).
   */
  env: Record<string, string>;
  /** config.storage.s3 for this server, for createS3Driver(). */
  s3Config: { bucket: string; region: string; endpoint: string; forcePathStyle: boolean; accessKeyId: string; secretAccessKey: string };
  /** Sets an object's Last-Modified `hours` back (S3 has no such call; the test server's files do). */
  ageObject(key: string, hours: number): Promise<void>;
  /** Multipart uploads begun and neither completed nor aborted (their parts still held). */
  pendingMultipartUploads(): Promise<number>;
  /** Sets a multipart upload's start (Initiated) and its parts' Last-Modified `hours` back. */
  ageMultipartUpload(uploadId: string, hours: number): Promise<void>;
  /**
   * A plain SDK client on this server, for what tests do behind 1688sync's back (deleting an
   * object, reading its headers); the caller destroys it.
   */
  client(): S3Client;
  /** What the server printed on stderr (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

export async function startS3Server({ bucket = 'test-bucket', label = 's3' }: { bucket?: string; label?: string } = {}): Promise<TestS3Server> {
  const directory = await mkdtemp(path.join(os.tmpdir(), `1688sync-${label}-`));
  const child: ChildProcess = spawn(
    process.execPath,
    ['--openssl-legacy-provider', '--import', 'tsx', path.join(__dirname, 's3-server.process.ts'), directory, bucket],
    { cwd: REPO_ROOT, env: childEnvironment({ TSX_TSCONFIG_PATH: path.join(REPO_ROOT, 'tsconfig.base.json') }), stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(() => reject(new Error(`the S3 test server did not start within ${START_TIMEOUT_MS} ms: ${stderr}`)), START_TIMEOUT_MS);
      child.stdout!.on('data', (d) => {
        stdout += d;
        const line = stdout.split('\n')[0];
        if (stdout.includes('\n')) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { port: number }).port);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the S3 test server exited (${code}) before listening: ${stderr}`));
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    await rm(directory, { recursive: true, force: true });
    throw err;
  }

  const endpoint = `http://127.0.0.1:${port}`;
  const bucketDir = path.join(directory, bucket);
  const uploadsDir = path.join(bucketDir, '._S3rver_uploads');
  return {
    endpoint,
    region: REGION,
    bucket,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    directory,
    env: {
      STORAGE_DRIVER: 's3',
      S3_BUCKET: bucket,
      S3_REGION: REGION,
      S3_ENDPOINT: endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: ACCESS_KEY_ID,
      S3_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
      PUBLIC_BASE_URL: `${endpoint}/${bucket}`,
    },
    s3Config: { bucket, region: REGION, endpoint, forcePathStyle: true, accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
    async ageObject(key, hours) {
      const when = new Date(Date.now() - hours * 3_600_000);
      await utimes(path.join(bucketDir, ...`${key}._S3rver_object`.split('/')), when, when);
    },
    async pendingMultipartUploads() {
      return (await readdir(uploadsDir, { withFileTypes: true })).filter((e) => e.isDirectory()).length;
    },
    async ageMultipartUpload(uploadId, hours) {
      const when = new Date(Date.now() - hours * 3_600_000);
      const uploadDir = path.join(uploadsDir, uploadId);
      for (const name of await readdir(uploadDir)) await utimes(path.join(uploadDir, name), when, when);
    },
    client: () =>
      new S3Client({
        endpoint,
        region: REGION,
        forcePathStyle: true,
        credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
        // As the driver does (s3-driver.ts, createS3Client): s3rver stores aws-chunked framing.
        requestChecksumCalculation: 'WHEN_REQUIRED',
      }),
    output: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await rm(directory, { recursive: true, force: true });
    },
  };
}
