import { KafkaJSConnectionError, KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from 'kafkajs';
import { StateLogMismatchError } from '../../../src/errors';
import { isTransient, withRetry } from '../../../src/worker/retry';

function protocolError(type: string, retriable: boolean): Error {
  return Object.assign(new KafkaJSProtocolError(type), { type, retriable });
}

function replyError(message: string): Error {
  return Object.assign(new Error(message), { name: 'ReplyError' });
}

describe('isTransient', () => {
  it('a broker refusing a message for its size is final, also behind kafkajs wrappers', () => {
    const tooLarge = protocolError('MESSAGE_TOO_LARGE', false);
    expect(isTransient(tooLarge)).toBe(false);
    expect(isTransient(new KafkaJSNonRetriableError(tooLarge))).toBe(false);
    expect(isTransient(new KafkaJSNumberOfRetriesExceeded(tooLarge, { retryCount: 5, retryTime: 100 }))).toBe(false);
  });

  it('a lost broker or a leader change passes', () => {
    expect(isTransient(new KafkaJSConnectionError('Connection error: ECONNREFUSED'))).toBe(true);
    expect(isTransient(new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('down'), { retryCount: 5, retryTime: 100 }))).toBe(true);
    expect(isTransient(protocolError('NOT_LEADER_FOR_PARTITION', true))).toBe(true);
  });

  it('Redis replies: a loading or failing-over server passes, a script error does not', () => {
    expect(isTransient(replyError('LOADING Redis is loading the dataset in memory'))).toBe(true);
    expect(isTransient(replyError('READONLY You can\'t write against a read only replica.'))).toBe(true);
    expect(isTransient(replyError('ERR Error running script (call to f_x): @user_script:1: oops'))).toBe(false);
    expect(isTransient(replyError('NOPERM this user has no permissions'))).toBe(false);
    // A key of a slot that a reshard is moving: it passes once the slot has moved.
    expect(isTransient(replyError('ERR Script attempted to access a non local key in a cluster node script: cab0397b, on @user_script:99.'))).toBe(true);
    expect(isTransient(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(true);
  });

  it('ClickHouse: a missing table is final', () => {
    expect(isTransient(Object.assign(new Error('Table is gone'), { code: '60' }))).toBe(false);
    expect(isTransient(new StateLogMismatchError('t', 0, '5', 'x'))).toBe(false);
  });
});

describe('withRetry', () => {
  it('stops at once on a final error instead of retrying it forever', async () => {
    let calls = 0;
    await expect(
      withRetry('send', async () => {
        calls += 1;
        throw protocolError('MESSAGE_TOO_LARGE', false);
      }),
    ).rejects.toThrow();
    expect(calls).toBe(1);
  });
});
