// Graceful shutdown: SIGINT/SIGTERM run the registered closers in reverse order of registration
// (last opened, first closed) within a deadline, then exit 0. A second signal forces exit.
import type { Logger } from 'pino';

export type Closer = () => Promise<unknown> | unknown;

export interface ShutdownOptions {
  logger: Logger;
  /** The whole shutdown's deadline (SHUTDOWN_TIMEOUT_MS). */
  timeoutMs: number;
  /** Injected in tests; process.exit otherwise. */
  exit?: (code: number) => void;
}

export interface Shutdown {
  /** Registers a closer; closers run in reverse order of registration. */
  add(name: string, closer: Closer): void;
  /** Listens for SIGINT and SIGTERM. */
  install(): void;
  /** Runs every closer once (later calls return the same promise), then exits. */
  run(reason: string): Promise<number>;
  readonly stopping: boolean;
}

export function createShutdown({ logger, timeoutMs, exit = (code) => process.exit(code) }: ShutdownOptions): Shutdown {
  const closers: { name: string; closer: Closer }[] = [];
  let running: Promise<number> | null = null;
  let signals = 0;

  async function closeAll(): Promise<string | null> {
    for (const { name, closer } of [...closers].reverse()) {
      const started = performance.now();
      try {
        await closer();
        logger.debug({ closer: name, ms: Math.round(performance.now() - started) }, 'closed');
      } catch (err) {
        logger.error({ err, closer: name }, `closing ${name} failed; going on with the rest`);
      }
    }
    return null;
  }

  function run(reason: string): Promise<number> {
    running ??= (async () => {
      logger.info({ reason, timeoutMs }, 'shutting down');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('deadline'), timeoutMs);
        timer.unref();
      });
      const outcome = await Promise.race([closeAll(), deadline]);
      clearTimeout(timer);
      const code = outcome === 'deadline' ? 1 : 0;
      if (code) logger.error({ timeoutMs }, `shutdown did not finish within ${timeoutMs} ms; exiting anyway`);
      else logger.info('shutdown complete');
      await new Promise((resolve) => logger.flush(() => resolve(undefined)));
      exit(code);
      return code;
    })();
    return running;
  }

  function onSignal(signal: NodeJS.Signals) {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      exit(1);
      return;
    }
    void run(signal);
  }

  return {
    add: (name, closer) => closers.push({ name, closer }),
    install() {
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    },
    run,
    get stopping() {
      return running !== null;
    },
  };
}
