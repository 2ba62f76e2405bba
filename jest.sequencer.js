/**
 * The order Jest's two workers take test files in.
 *
 * Most files spend their time waiting on a broker, a process or a timer, so two run at once.
 * The files in RUN_ALONE hold a private 3-broker Kafka cluster through timed faults and assert
 * how many seconds recovery takes: they come last, one after another, so that when they start
 * the other worker is at most finishing a short file (the rest is ordered longest first, as Jest
 * does by itself: by the last run's durations, else by file size) and their limits are not
 * measured against a second test file's load.
 */
const { default: JestSequencer } = require('@jest/test-sequencer');

const RUN_ALONE = [/kafka-failover\.int\.test\.ts$/];

class SessionizerSequencer extends JestSequencer {
  sort(tests) {
    const ordered = super.sort(tests);
    const alone = (test) => RUN_ALONE.some((pattern) => pattern.test(test.path));
    return [...ordered.filter((test) => !alone(test)), ...ordered.filter(alone)];
  }
}

module.exports = SessionizerSequencer;
