/**
 * The process's last line of defence. Every promise in the project has a handler; if one ever
 * slips through, Node's default would print a stack trace (or, for an unhandled rejection,
 * exit with one) that no log collector parses. Instead: one JSON line a log pipeline can alert
 * on, with a fixed message that tests look for, and exit 1 so the orchestrator restarts us.
 * A test runs every broker, Redis and ClickHouse fault with workers and checks it never fires.
 */
export const LAST_RESORT_MESSAGE = 'unhandled failure: exiting';

export function installLastResortHandlers(write: (line: string) => void = (line) => process.stderr.write(line)): void {
  const die = (kind: string) => (reason: unknown) => {
    const err = reason instanceof Error ? { type: reason.name, message: reason.message, stack: reason.stack } : { message: String(reason) };
    write(`${JSON.stringify({ level: 60, time: new Date().toISOString(), kind, err, msg: LAST_RESORT_MESSAGE })}\n`);
    process.exit(1);
  };
  process.on('unhandledRejection', die('unhandledRejection'));
  process.on('uncaughtException', die('uncaughtException'));
}
