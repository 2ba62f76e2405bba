import { decideStart, messageFingerprint } from '../../../src/worker/log-position';

const log = (low: number, high: number, committed = -1) => ({ low: BigInt(low), high: BigInt(high), committed: BigInt(committed) });
const state = (offset: number, fingerprint = '') => ({ offset: BigInt(offset), fingerprint });

describe('decideStart', () => {
  it('reads a new partition from the log start', () => {
    expect(decideStart(state(-1), log(0, 10))).toEqual({ kind: 'read', from: 0n, verify: null, rewound: 0n, deletedUnapplied: 0n });
  });

  it('reads on from the state, not from a committed offset ahead of it, and counts what it reapplies', () => {
    expect(decideStart(state(570), log(0, 2317, 1000))).toMatchObject({ kind: 'read', from: 571n, rewound: 429n });
  });

  it('a state ahead of the committed offset (crash before the Kafka commit) is no rewind', () => {
    expect(decideStart(state(570), log(0, 2317, 500))).toMatchObject({ kind: 'read', from: 571n, rewound: 0n });
  });

  it('starts at the state message to check it when the state knows its fingerprint', () => {
    expect(decideStart(state(570, '570:abc'), log(0, 2317))).toMatchObject({ from: 570n, verify: { offset: 570n, fingerprint: '570:abc' } });
  });

  it('a state at or beyond the log end belongs to another log', () => {
    const decision = decideStart(state(571, '571:abc'), log(0, 571));
    expect(decision.kind).toBe('mismatch');
    expect(decision.kind === 'mismatch' && decision.detail).toMatch(/log ends at offset 570.*applied offset 571/);
    expect(decideStart(state(0), log(0, 0)).kind).toBe('mismatch');
    expect(decideStart(state(569), log(0, 571)).kind).toBe('read');
  });

  it('messages deleted by retention before they were applied are counted, and reading starts at the log start', () => {
    expect(decideStart(state(99, '99:x'), log(150, 300))).toEqual({ kind: 'read', from: 150n, verify: null, rewound: 0n, deletedUnapplied: 50n });
  });
});

describe('messageFingerprint', () => {
  const m = (offset: string, key: string | null, value: string) => ({ offset, key: key === null ? null : Buffer.from(key), value: Buffer.from(value) });
  it('tells apart messages at one offset by key and value', () => {
    expect(messageFingerprint(m('5', 'a', 'x'))).toBe(messageFingerprint(m('5', 'a', 'x')));
    expect(messageFingerprint(m('5', 'a', 'x'))).not.toBe(messageFingerprint(m('5', 'a', 'y')));
    expect(messageFingerprint(m('5', 'a', 'bx'))).not.toBe(messageFingerprint(m('5', 'ab', 'x')));
    expect(messageFingerprint(m('5', null, 'x'))).not.toBe(messageFingerprint(m('5', '', 'x')));
    expect(messageFingerprint(m('5', 'a', 'x'))).toMatch(/^5:[0-9a-f]{16}$/);
  });
});
