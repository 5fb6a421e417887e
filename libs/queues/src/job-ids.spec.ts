import { describe, expect, it } from 'vitest';
import { InvalidJobIdError, assertJobId, defaultJobId, deliverJobId, downloadJobId, maintenanceJobId, processJobId, schedulerId } from './job-ids';

const IMAGE_ID = '0b6f1c9e-4c1a-4b7e-9d1e-2f3a4b5c6d7e';

describe('job ids', () => {
  it('gives the same download job id for the same image, so a second add is a no-op', () => {
    expect(downloadJobId(IMAGE_ID)).toBe(`download-${IMAGE_ID}`);
    expect(downloadJobId(IMAGE_ID)).toBe(downloadJobId(IMAGE_ID));
    expect(downloadJobId(IMAGE_ID)).not.toBe(downloadJobId('1b6f1c9e-4c1a-4b7e-9d1e-2f3a4b5c6d7e'));
  });

  it('gives one process job id per image and settings version', () => {
    expect(processJobId(IMAGE_ID, 'a1b2c3')).toBe(`process-${IMAGE_ID}-a1b2c3`);
    expect(processJobId(IMAGE_ID, 'a1b2c3')).toBe(processJobId(IMAGE_ID, 'a1b2c3'));
    expect(processJobId(IMAGE_ID, 'a1b2c3')).not.toBe(processJobId(IMAGE_ID, 'd4e5f6'));
  });

  it('builds maintenance ids as <job>-<suffix> and turns a ":" in the suffix into "-"', () => {
    expect(maintenanceJobId('reconcile', 'manual-1732612345678')).toBe('reconcile-manual-1732612345678');
    const fromTimestamp = maintenanceJobId('backup', '2026-11-26T09:40:00.000Z');
    expect(fromTimestamp).toBe('backup-2026-11-26T09-40-00.000Z');
    expect(maintenanceJobId('backup', '2026-11-26T09:40:00.000Z')).toBe(fromTimestamp);
  });

  it('gives one scheduler id per maintenance job name', () => {
    expect(schedulerId('consistency-check')).toBe('schedule-consistency-check');
    expect(schedulerId('consistency-check')).toBe(schedulerId('consistency-check'));
  });

  it('never puts a ":" in an id it builds', () => {
    const ids = [
      downloadJobId(IMAGE_ID),
      processJobId(IMAGE_ID, 'ffffffffffff'),
      maintenanceJobId('purge-deleted', 'a:b:c'),
      maintenanceJobId('vacuum-analyze', '12:00'),
      schedulerId('prune-backups'),
    ];
    for (const id of ids) expect(id).not.toContain(':');
  });

  it('rejects an id containing ":" (BullMQ would refuse it)', () => {
    expect(() => assertJobId('download:1')).toThrow(InvalidJobIdError);
    expect(() => assertJobId('download:1')).toThrow(/contains ':'/);
    expect(() => downloadJobId('a:b')).toThrow(InvalidJobIdError);
    expect(() => processJobId(IMAGE_ID, 'v:1')).toThrow(InvalidJobIdError);
  });

  it('rejects an all-digit id (BullMQ keeps those for its own counter)', () => {
    expect(() => assertJobId('12345')).toThrow(InvalidJobIdError);
    expect(() => assertJobId('12345')).toThrow(/all digits/);
    expect(() => assertJobId('0')).toThrow(InvalidJobIdError);
  });

  it('rejects an empty id and one longer than 200 characters', () => {
    expect(() => assertJobId('')).toThrow(InvalidJobIdError);
    expect(() => assertJobId('x'.repeat(201))).toThrow(InvalidJobIdError);
    expect(assertJobId('x'.repeat(200))).toHaveLength(200);
  });

  it('accepts ids built with "-" and returns them unchanged', () => {
    expect(assertJobId('download-42')).toBe('download-42');
    expect(assertJobId('42-a')).toBe('42-a');
  });

  it('gives its errors a stable code', () => {
    try {
      assertJobId('1');
      expect.unreachable('assertJobId accepted an all-digit id');
    } catch (err) {
      expect((err as InvalidJobIdError).code).toBe('invalid_job_id');
    }
  });
});

describe('defaultJobId', () => {
  it("gives a job added by hand its image job's deterministic id, so it meets the pipeline's own job", () => {
    expect(defaultJobId('download', { imageId: IMAGE_ID })).toBe(downloadJobId(IMAGE_ID));
    expect(defaultJobId('process', { imageId: IMAGE_ID, settingsVersion: 'abc123' })).toBe(processJobId(IMAGE_ID, 'abc123'));
  });

  it("gives a webhook drain added by hand its subscription's one drain id", () => {
    expect(defaultJobId('deliver', { subscriptionId: IMAGE_ID })).toBe(`deliver-${IMAGE_ID}`);
    expect(deliverJobId(IMAGE_ID)).toBe(`deliver-${IMAGE_ID}`);
  });

  it('gives any other job a one-off maintenance id', () => {
    const [a, b] = [defaultJobId('reconcile', {}), defaultJobId('reconcile', {})];
    expect(a).toMatch(/^reconcile-cli-[0-9a-f-]{36}$/);
    expect(a).not.toBe(b);
    expect(defaultJobId('process', { imageId: IMAGE_ID })).toMatch(/^process-cli-/);
  });
});
