import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestDatabase, createTestDatabase, createTestQueuePrefix, startAppProcess } from '@1688sync/testing';

describe('runWorkerApp', () => {
  let db: TestDatabase;
  const queues = createTestQueuePrefix('runtime');
  beforeAll(async () => {
    db = await createTestDatabase('runtime');
  });
  afterAll(async () => {
    await db.drop();
    await queues.cleanup();
  });

  it('exits 1 with one log line saying why when its port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '0.0.0.0', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const proc = await startAppProcess('maintenance-worker', { DATABASE_URL: db.url, QUEUE_PREFIX: queues.prefix, PORT: String(port) });
      const { code } = await proc.exited;
      expect(code).toBe(1);
      const fatal = proc
        .output()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((l) => l.level === 'fatal');
      expect(fatal).toHaveLength(1);
      expect(fatal[0].msg).toContain('maintenance-worker could not start');
      expect(fatal[0].msg).toContain('EADDRINUSE');
      expect(JSON.stringify(fatal[0])).not.toContain('at Server.');
    } finally {
      blocker.close();
    }
  });

  it('logs JSON lines that carry the app, its version and the settings version', async () => {
    const proc = await startAppProcess('image-processing-worker', { DATABASE_URL: db.url, QUEUE_PREFIX: queues.prefix });
    try {
      const started = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no start line: ${proc.output()}`)), 20_000);
        proc.child.stdout!.on('data', () => {
          const line = proc.output().split('\n').find((l) => l.includes('image-processing-worker started'));
          if (line) {
            clearTimeout(timer);
            resolve(JSON.parse(line));
          }
        });
      });
      expect(started).toMatchObject({ app: 'image-processing-worker', queue: 'image-process', level: 'info' });
      expect(started.settingsVersion).toMatch(/^[0-9a-f]{10}$/);
      expect(started.version).toMatch(/^\d+\.\d+\.\d+/);
    } finally {
      expect((await proc.stop()).code).toBe(0);
    }
  });
});
