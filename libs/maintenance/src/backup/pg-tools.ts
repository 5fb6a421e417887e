// pg_dump and pg_restore as child processes: the one place they are run. The connection goes
// through the environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE from DATABASE_URL),
// never the command line, where `ps` would show the password. Before either runs, its major
// version is checked against the server's: an older client cannot dump a newer server, and
// says so in one line instead of a page of pg_dump errors.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { childEnvironment } from '@1688sync/config';
import { PgToolFailedError, PgToolNotFoundError, PgToolVersionError } from './backup.errors';

export type PgTool = 'pg_dump' | 'pg_restore';

/** Most stderr kept from a tool (its last lines go into the error). */
const MAX_STDERR = 64 * 1024;

/** The libpq environment of a DATABASE_URL: what pg_dump and pg_restore connect with. */
export function pgEnvironment(databaseUrl: string): Record<string, string | undefined> {
  const url = new URL(databaseUrl);
  const param = (name: string) => url.searchParams.get(name) ?? undefined;
  const decoded = (value: string) => (value ? decodeURIComponent(value) : undefined);
  const env: Record<string, string | undefined> = {
    PGHOST: param('host') ?? (url.hostname.replace(/^\[(.*)\]$/, '$1') || undefined),
    PGPORT: url.port || param('port'),
    PGUSER: decoded(url.username) ?? param('user'),
    PGPASSWORD: decoded(url.password) ?? param('password'),
    PGDATABASE: decoded(url.pathname.replace(/^\//, '')),
    PGSSLMODE: param('sslmode'),
    PGAPPNAME: '1688sync-backup',
    PGCONNECT_TIMEOUT: '10',
    // A service file or a host address inherited from the shell would override the URL.
    PGSERVICE: undefined,
    PGHOSTADDR: undefined,
  };
  // What the URL does not say is left to the inherited environment, as the pg driver does.
  for (const key of ['PGPORT', 'PGUSER', 'PGPASSWORD', 'PGSSLMODE'] as const) if (env[key] === undefined) delete env[key];
  return env;
}

/** The major version in `pg_dump --version` output ("pg_dump (PostgreSQL) 15.20 (Debian …)"). */
export function toolMajorVersion(versionOutput: string): number | null {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(versionOutput);
  if (!m) return null;
  const major = Number(m[1]);
  // Before 10 the major version had two parts (9.6): 9 and 6 give 9.6.
  return major < 10 && m[2] !== undefined ? Number(`${major}.${m[2]}`) : major;
}

/** The major version of server_version_num (150020 → 15, 90624 → 9.6). */
export function serverMajorVersion(serverVersionNum: number): number {
  if (serverVersionNum >= 100_000) return Math.floor(serverVersionNum / 10_000);
  return Number(`${Math.floor(serverVersionNum / 10_000)}.${Math.floor((serverVersionNum % 10_000) / 100)}`);
}

/**
 * Checks that `tool` (its `--version` output) can work with a server of `serverVersionNum`:
 * its major version must be the server's or newer. Returns both majors; throws
 * PgToolVersionError with one line saying what to install.
 */
export function checkPgToolVersion(tool: PgTool, versionOutput: string, serverVersionNum: number): { toolMajor: number; serverMajor: number } {
  const serverMajor = serverMajorVersion(serverVersionNum);
  const toolMajor = toolMajorVersion(versionOutput);
  if (toolMajor === null) {
    throw new PgToolVersionError(`could not read the version of ${tool} from ${JSON.stringify(versionOutput.trim().slice(0, 100))}; is it PostgreSQL's ${tool}?`);
  }
  if (toolMajor < serverMajor) {
    const verb = tool === 'pg_dump' ? 'dump' : 'restore into';
    throw new PgToolVersionError(
      `${tool} ${toolMajor} cannot ${verb} a PostgreSQL ${serverMajor} server: install postgresql-client-${serverMajor} (or newer) and put its ${tool} first on PATH`,
    );
  }
  return { toolMajor, serverMajor };
}

/**
 * pg_restore reads archives of its own pg_dump version and older only: `dumpedBy` is the
 * `--version` line of the pg_dump that made the archive (from the manifest).
 */
export function checkArchiveReadable(restoreVersionOutput: string, dumpedBy: string): void {
  const restoreMajor = toolMajorVersion(restoreVersionOutput);
  const dumpMajor = toolMajorVersion(dumpedBy);
  if (restoreMajor !== null && dumpMajor !== null && restoreMajor < dumpMajor) {
    throw new PgToolVersionError(
      `pg_restore ${restoreMajor} cannot read a dump made by pg_dump ${dumpMajor}: install postgresql-client-${dumpMajor} (or newer) and put its pg_restore first on PATH`,
    );
  }
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs pg_dump / pg_restore against one database. */
export class PgTools {
  private readonly env: NodeJS.ProcessEnv;

  constructor(databaseUrl: string) {
    this.env = childEnvironment(pgEnvironment(databaseUrl));
  }

  /** `<tool> --version`, e.g. "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)". */
  async version(tool: PgTool): Promise<string> {
    let stdout = '';
    const run = await this.run(tool, ['--version'], (child) => {
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    });
    if (run.code !== 0) throw new PgToolFailedError(tool, exitText(run), run.stderr);
    return stdout.trim();
  }

  /**
   * pg_dump -Fc of the database as it was in `snapshot` (pg_export_snapshot of a transaction the
   * caller keeps open until this resolves), streamed into `file` and hashed on the way.
   */
  async dump(file: string, { snapshot, excludeTableData, onBytes }: { snapshot?: string; excludeTableData: string[]; onBytes?: (bytes: number) => void }): Promise<{ size: number; sha256: string }> {
    const args = ['--format=custom', '--no-password', ...excludeTableData.map((t) => `--exclude-table-data=${t}`)];
    if (snapshot) args.push(`--snapshot=${snapshot}`);
    const hash = createHash('sha256');
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        bytes += chunk.length;
        onBytes?.(bytes);
        callback(null, chunk);
      },
    });
    let written: Promise<void> = Promise.resolve();
    const run = await this.run('pg_dump', args, (child) => {
      written = pipeline(child.stdout!, meter, createWriteStream(file, { mode: 0o600 }));
      written.catch(() => child.kill('SIGTERM'));
    });
    await written;
    if (run.code !== 0) throw new PgToolFailedError('pg_dump', exitText(run), run.stderr);
    return { size: bytes, sha256: hash.digest('hex') };
  }

  /** pg_restore --list: throws unless the archive's table of contents reads. Returns its entries. */
  async list(file: string): Promise<number> {
    let entries = 0;
    let rest = '';
    const run = await this.run('pg_restore', ['--list', file], (child) => {
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        entries += lines.filter((l) => l && !l.startsWith(';')).length;
      });
    });
    if (run.code !== 0) throw new PgToolFailedError('pg_restore --list', exitText(run), run.stderr);
    return entries;
  }

  /**
   * Replaces the database's objects with the archive's in one transaction: a failure leaves the
   * database as it was. Objects not in the archive are left alone.
   */
  async restore(file: string): Promise<void> {
    const run = await this.run('pg_restore', ['--clean', '--if-exists', '--single-transaction', '--no-owner', '--no-password', `--dbname=${this.env.PGDATABASE}`, file]);
    if (run.code !== 0) throw new PgToolFailedError('pg_restore', exitText(run), run.stderr);
  }

  private run(tool: PgTool, args: string[], attach?: (child: ReturnType<typeof spawn>) => void): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(tool, args, { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-MAX_STDERR);
      });
      child.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? new PgToolNotFoundError(tool) : err));
      child.once('close', (code, signal) => resolve({ code, signal, stderr }));
      attach?.(child);
    });
  }
}

function exitText(run: Run): string {
  return run.signal ? `was killed by ${run.signal}` : `exited with code ${run.code}`;
}
