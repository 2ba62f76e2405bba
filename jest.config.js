/**
 * Two projects: `unit` needs nothing but Node; `integration` talks to real Kafka, Redis and
 * ClickHouse (see test/support/ for how it finds or starts them).
 */
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json' }];

/** @type {import('jest').Config} */
module.exports = {
  // Some clients (kafkajs' sockets, ioredis reconnect timers of a server a test stopped on
  // purpose) keep the event loop alive after their test closed them; with one worker Jest runs
  // in the main process and would then never exit. Each test file cleans up what it owns.
  forceExit: true,
  // Two files at a time (Jest's default is one per core but one, so one here): most of the
  // suite waits on brokers, processes and timers. The timed fault tests run last and alone
  // (jest.sequencer.js).
  maxWorkers: 2,
  testSequencer: '<rootDir>/jest.sequencer.js',
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      roots: ['<rootDir>/test/unit'],
      testMatch: ['**/*.test.ts'],
      transform: { '^.+\\.ts$': tsJest },
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      roots: ['<rootDir>/test/integration'],
      testMatch: ['**/*.int.test.ts'],
      transform: { '^.+\\.ts$': tsJest },
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      slowTestThreshold: 30,
    },
  ],
};
