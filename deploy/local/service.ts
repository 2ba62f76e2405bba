/** What starting one local service gives back. */

export type ServiceName = 'kafka' | 'redis' | 'clickhouse';

export const SERVICE_NAMES: readonly ServiceName[] = ['kafka', 'redis', 'clickhouse'];

export interface LocalService {
  name: ServiceName;
  /** The environment variables that point a client at it (KAFKA_BROKERS, ...). */
  env: Record<string, string>;
  /** True when this call started it, false when it was already running (or is not ours). */
  startedNow: boolean;
}
