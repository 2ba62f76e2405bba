/** kafkajs' own log lines: retried answers expected at every start are not errors in our log. */
import { logLevel } from 'kafkajs';
import { clientLogLevel } from '../../../src/kafka/client-log';

const entry = (level: logLevel, message: string, error?: string) => ({
  level,
  log: { timestamp: '', logger: 'kafkajs', message, ...(error === undefined ? {} : { error }) },
});

describe('clientLogLevel', () => {
  it('logs a coordinator or leader not there yet at info: kafkajs retries it, and every start meets it', () => {
    expect(clientLogLevel(entry(logLevel.ERROR, 'Response GroupCoordinator(key: 10, version: 2)', 'The group coordinator is not available'))).toBe('info');
    expect(clientLogLevel(entry(logLevel.ERROR, 'Response FindCoordinator(key: 10, version: 2)', "The coordinator is loading and hence can't process requests"))).toBe('info');
    expect(
      clientLogLevel(entry(logLevel.ERROR, 'Response Metadata(key: 3, version: 6)', 'There is no leader for this topic-partition as we are in the middle of a leadership election')),
    ).toBe('info');
  });

  it('keeps every other entry at its own level', () => {
    expect(clientLogLevel(entry(logLevel.ERROR, 'Response Produce(key: 0, version: 7)', 'The request included a message larger than the max message size the server will accept'))).toBe('error');
    expect(clientLogLevel(entry(logLevel.ERROR, 'Crash: KafkaJSNumberOfRetriesExceeded'))).toBe('error');
    expect(clientLogLevel(entry(logLevel.WARN, 'The group is rebalancing, re-joining'))).toBe('warn');
    expect(clientLogLevel(entry(logLevel.INFO, 'Consumer has joined the group'))).toBe('debug');
  });
});
