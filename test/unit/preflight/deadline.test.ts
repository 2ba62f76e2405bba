/**
 * Trying a service until the connect deadline: a refused connection is reported within 2 s, not
 * after the whole CONNECT_TIMEOUT_SECONDS, and the reason given is the real one — never the
 * "no answer within 0 s" of a last attempt that had only milliseconds left.
 */
import { AttemptTimeout, REFUSED_GRACE_MS, retryUntil, shortReason } from '../../../src/preflight/deadline';

const hang = () => new Promise<never>(() => undefined);
function refused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
}

describe('retryUntil', () => {
  it('gives up on refused connections after a short grace, long before the deadline', async () => {
    const started = Date.now();
    let attempts = 0;
    const error = await retryUntil(
      async () => {
        attempts += 1;
        throw refused();
      },
      { deadline: started + 15_000 },
    ).catch((err: unknown) => err);
    const elapsed = Date.now() - started;
    expect(shortReason(error)).toBe('connection refused');
    expect(elapsed).toBeGreaterThanOrEqual(REFUSED_GRACE_MS);
    expect(elapsed).toBeLessThan(2_000);
    // More than one try: one dead broker of a bootstrap list must not fail the command.
    expect(attempts).toBeGreaterThan(1);
  });

  it('a refusal that clears within the grace is a success', async () => {
    let attempts = 0;
    const result = await retryUntil(
      async () => {
        attempts += 1;
        if (attempts < 2) throw refused();
        return 'up';
      },
      { deadline: Date.now() + 15_000 },
    );
    expect(result).toBe('up');
  });

  it('keeps the real error when the last attempt is cut short by the deadline', async () => {
    const started = Date.now();
    let attempts = 0;
    const error = await retryUntil(
      async () => {
        attempts += 1;
        if (attempts > 1) return hang();
        // The first attempt fails just before the deadline, as on a loaded machine: the next
        // one gets a few milliseconds and times out.
        await new Promise((resolve) => setTimeout(resolve, 500));
        throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      },
      { deadline: started + 600, pauseMs: 20 },
    ).catch((err: unknown) => err);
    expect(attempts).toBe(2);
    expect(shortReason(error)).toBe('connection closed by the other side');
  });

  it('reports a timeout with the whole time waited, not the remnant of the last attempt', async () => {
    const started = Date.now();
    const error = await retryUntil(hang, { deadline: started + 1_200, pauseMs: 100 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AttemptTimeout);
    expect(shortReason(error)).toMatch(/^no answer within 1\.[2-9] s$/);
  });

  it('never says "0 s"', () => {
    expect(new AttemptTimeout(20).message).toBe('no answer within 0.1 s');
    expect(new AttemptTimeout(15_000).message).toBe('no answer within 15 s');
  });
});
