/**
 * Teardown for a bench run: everything started registers how to stop it, and
 * it is stopped in reverse order exactly once, whether the run finishes,
 * throws, or is interrupted (Ctrl-C, SIGTERM).
 */

type Task = { name: string; run: () => Promise<void> };

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** A last-in, first-out list of teardown steps. */
export class Cleanup {
  private readonly tasks: Task[] = [];
  private running: Promise<void> | undefined;

  /** Registers `run` to be called at teardown under `name` (for error messages). */
  add(name: string, run: () => Promise<void>): void {
    this.tasks.push({ name, run });
  }

  /** Runs every step (each bounded by `stepTimeoutMs`); later calls wait for the first. */
  run(stepTimeoutMs = 20_000): Promise<void> {
    this.running ??= (async () => {
      while (this.tasks.length) {
        const task = this.tasks.pop()!;
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            task.run(),
            new Promise<void>((_, reject) => {
              timer = setTimeout(() => reject(new Error(`timed out after ${stepTimeoutMs} ms`)), stepTimeoutMs);
            }),
          ]);
        } catch (err) {
          console.error(`[bench] cleanup "${task.name}" failed: ${err instanceof Error ? err.message : String(err)}`);
        } finally {
          clearTimeout(timer);
        }
      }
    })();
    return this.running;
  }

  private readonly handler = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (this.signalledAt !== undefined) {
      // npm and tsx relay the same Ctrl-C a few milliseconds later: not a second press.
      if (now - this.signalledAt < 1_000) return;
      console.error('[bench] second signal: exiting without finishing cleanup');
      process.exit(1);
    }
    this.signalledAt = now;
    console.error(`\n[bench] ${signal}: stopping and cleaning up…`);
    void this.run().finally(() => process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143));
  };
  private signalledAt: number | undefined;

  /** Whether a signal asked the run to stop. */
  get stopping(): boolean {
    return this.signalledAt !== undefined;
  }

  /**
   * On SIGINT/SIGTERM/SIGHUP: runs the teardown, then exits (130/143/129). A
   * second signal (a second Ctrl-C, not the relayed copy of the first) exits
   * at once.
   */
  onSignals(): void {
    for (const signal of SIGNALS) process.on(signal, this.handler);
  }

  /**
   * Removes every other listener of those signals. Miniflare installs its
   * own, which kill workerd and call process.exit() at once: the database
   * would never be dropped. Call after the Miniflare instances exist; the
   * teardown disposes them, and Miniflare's own exit hook still kills any
   * workerd left when the process exits.
   */
  claimSignals(): void {
    for (const signal of SIGNALS) {
      for (const listener of process.listeners(signal)) {
        if (listener !== this.handler) process.removeListener(signal, listener as (...args: unknown[]) => void);
      }
    }
  }
}
