// The read replicas of DATABASE_REPLICA_URLS (SPEC §15): one pool per replica, and a watch that
// measures how far each is behind the primary and leaves out the ones that are down or too far.
//
// Lag is measured by WAL position, not by replay timestamp: a replay timestamp grows while the
// primary is idle (nothing to replay), which would call an idle, caught-up replica "late". Each poll
// samples the primary's pg_current_wal_lsn(); a replica whose pg_last_wal_replay_lsn() has reached
// the newest sample is caught up (lag 0), otherwise its lag is the time since the primary first
// wrote past the replica's position (the first sample beyond it). The polls are a fraction of the
// bound apart, so a replica is left out at most one poll after it passes the bound.
import type { Logger } from 'pino';
import type { DataSource, EntityManager } from 'typeorm';

/** What the app knows of one replica. */
export interface ReplicaState {
  /** host:port/database, credentials left out: the metric label and the readiness check's name. */
  name: string;
  /** Reads may go there: reachable, and at most the bound behind. */
  usable: boolean;
  /** Seconds behind the primary by WAL position; null while unreachable or not measured yet. */
  lagSeconds: number | null;
  /** Why it is left out (empty while usable). */
  reason: string;
}

export interface ReplicaSetOptions {
  /** The primary, connected (its WAL position is the reference). */
  primary: () => Promise<DataSource>;
  /** One DataSource per replica, not yet initialized. */
  replicas: { name: string; dataSource: DataSource }[];
  maxLagMs: number;
  logger?: Logger;
  /** Time between polls; default a quarter of the bound, between 50 ms and 1 s. */
  pollIntervalMs?: number;
}

/** A pg_lsn's text ("16/B374D848") as a number of bytes. */
export function parseLsn(text: string): bigint {
  const [hi, lo] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

interface Member {
  name: string;
  dataSource: DataSource;
  state: ReplicaState;
  connecting: Promise<DataSource> | null;
}

export class ReplicaSet {
  private readonly members: Member[];
  /** The primary's WAL position over the last while, oldest first. */
  private samples: { at: number; lsn: bigint }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private stopped = false;
  private next = 0;
  private readonly intervalMs: number;
  private readonly retentionMs: number;

  constructor(private readonly opts: ReplicaSetOptions) {
    this.members = opts.replicas.map(({ name, dataSource }) => ({
      name,
      dataSource,
      connecting: null,
      state: { name, usable: false, lagSeconds: null, reason: 'not measured yet' },
    }));
    this.intervalMs = opts.pollIntervalMs ?? Math.min(1000, Math.max(50, Math.floor(opts.maxLagMs / 4)));
    // Enough history to tell "past the bound" from "within it", and to report a lag well past it.
    this.retentionMs = Math.max(4 * opts.maxLagMs, 60_000);
  }

  /** Starts the polls (idempotent). */
  start(): void {
    if (this.timer || this.polling || this.stopped) return;
    const loop = () => {
      this.polling = this.poll().finally(() => {
        this.polling = null;
        if (!this.stopped) this.timer = setTimeout(loop, this.intervalMs).unref();
      });
    };
    loop();
  }

  /** The states as of the last poll. */
  states(): ReplicaState[] {
    return this.members.map((m) => ({ ...m.state }));
  }

  /** The manager of a usable replica, taking turns; null when none is (read from the primary). */
  pick(): EntityManager | null {
    const usable = this.members.filter((m) => m.state.usable && m.dataSource.isInitialized);
    if (!usable.length) return null;
    this.next = (this.next + 1) % usable.length;
    return usable[this.next].dataSource.manager;
  }

  /** The replicas' pools (for pool usage). */
  dataSources(): DataSource[] {
    return this.members.map((m) => m.dataSource).filter((ds) => ds.isInitialized);
  }

  /** One measurement of every replica. Exported for the specs that must not wait for a timer. */
  async poll(): Promise<void> {
    let primaryLsn: bigint;
    try {
      const primary = await this.opts.primary();
      const [row] = (await primary.query('SELECT pg_current_wal_lsn()::text AS lsn')) as { lsn: string }[];
      primaryLsn = parseLsn(row.lsn);
    } catch {
      return; // the primary is away: the app is not ready anyway, and there is no reference to measure against
    }
    const at = Date.now();
    this.samples.push({ at, lsn: primaryLsn });
    while (this.samples.length > 1 && this.samples[0].at < at - this.retentionMs) this.samples.shift();
    await Promise.all(this.members.map((m) => this.measure(m, at)));
  }

  private async measure(member: Member, at: number): Promise<void> {
    let next: ReplicaState;
    try {
      const ds = await this.connect(member);
      const [row] = (await ds.query('SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn()::text AS lsn')) as { standby: boolean; lsn: string | null }[];
      // A server not in recovery replays nothing: it is not behind anything (a copy kept by other means).
      const lagMs = row.standby && row.lsn ? this.lagMs(parseLsn(row.lsn), at) : 0;
      const lagSeconds = lagMs / 1000;
      next =
        lagMs <= this.opts.maxLagMs
          ? { name: member.name, usable: true, lagSeconds, reason: '' }
          : {
              name: member.name,
              usable: false,
              lagSeconds,
              reason: `${lagSeconds.toFixed(1)} s behind the primary (more than DATABASE_REPLICA_MAX_LAG_MS, ${this.opts.maxLagMs} ms): left out of reads until it catches up`,
            };
    } catch (err) {
      next = { name: member.name, usable: false, lagSeconds: null, reason: `unreachable (${(err as Error).message}): left out of reads until it answers` };
    }
    if (next.usable !== member.state.usable && member.state.reason !== 'not measured yet') {
      if (next.usable) this.opts.logger?.info({ replica: member.name, lagSeconds: next.lagSeconds }, 'read replica back in use');
      else this.opts.logger?.warn({ replica: member.name, reason: next.reason }, 'read replica left out of reads');
    }
    member.state = next;
  }

  /** Time since the primary first wrote past `replay`, by the samples; 0 when it has all of the newest one. */
  private lagMs(replay: bigint, now: number): number {
    const newest = this.samples[this.samples.length - 1];
    if (!newest || replay >= newest.lsn) return 0;
    const firstPast = this.samples.find((s) => s.lsn > replay) ?? this.samples[0];
    return Math.max(0, now - firstPast.at);
  }

  private async connect(member: Member): Promise<DataSource> {
    if (member.dataSource.isInitialized) return member.dataSource;
    member.connecting ??= member.dataSource.initialize().finally(() => {
      member.connecting = null;
    });
    return member.connecting;
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.polling?.catch(() => undefined);
    await Promise.all(
      this.members.map(async (m) => {
        await m.connecting?.catch(() => undefined);
        if (m.dataSource.isInitialized) await m.dataSource.destroy().catch(() => undefined);
      }),
    );
  }
}
