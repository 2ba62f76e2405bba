/**
 * Kafka's topic ids: a topic deleted and created again under the same name gets a new id, and
 * offsets alone cannot tell the two logs apart. kafkajs speaks Metadata only up to version 6,
 * which has no ids, so this sends one Metadata v12 request itself, over a connection kafkajs
 * made (TLS and SASL included), and reads only the topics' names and ids from the answer.
 *
 * kafkajs exposes no public way to send a request; its cluster factory is reached through the
 * client's own private symbol. kafkajs is pinned (2.2.x, frozen upstream), and a test checks
 * this against the real broker. Where anything of it fails (an older broker without topic ids,
 * a kafkajs that changed), ids are simply unknown and the worker falls back on offsets and
 * message fingerprints.
 */
import type { Kafka } from 'kafkajs';
import { borrowCluster, type BorrowedCluster } from './borrowed-cluster';

// kafkajs' protocol coder (CommonJS modules of the package, no types).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Encoder = require('kafkajs/src/protocol/encoder') as new () => KafkaEncoder;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => KafkaDecoder;

interface KafkaEncoder {
  writeUVarInt(value: number): KafkaEncoder;
  writeBoolean(value: boolean): KafkaEncoder;
  writeBuffer(value: Buffer): KafkaEncoder;
  writeUVarIntString(value: string | null): KafkaEncoder;
}

interface KafkaDecoder {
  readInt8(): number;
  readInt16(): number;
  readInt32(): number;
  readUVarInt(): number;
  readBytes(length: number): Buffer;
  readUVarIntString(): string | null;
}


const METADATA = 3;
/** Asked before every batch: a broker that does not answer quickly must not hold batches up. */
const ANSWER_TIMEOUT_MS = 2_000;
const VERSION = 12;

/** The Metadata v12 request: these topics by name, nothing created, no ACL details. */
function metadataRequest(topics: readonly string[]): unknown {
  return {
    apiKey: METADATA,
    apiVersion: VERSION,
    apiName: 'Metadata',
    encode: async () => {
      const encoder = new Encoder();
      // kafkajs writes a version-1 request header; a flexible version's header (v2) only adds
      // an empty tagged-field section after the client id, i.e. this first 0 byte.
      encoder.writeUVarInt(0);
      encoder.writeUVarInt(topics.length + 1);
      for (const topic of topics) {
        encoder.writeBuffer(Buffer.alloc(16)); // topic id: zero, ask by name
        encoder.writeUVarIntString(topic);
        encoder.writeUVarInt(0);
      }
      encoder.writeBoolean(false); // allow_auto_topic_creation
      encoder.writeBoolean(false); // include_topic_authorized_operations
      encoder.writeUVarInt(0);
      return encoder;
    },
  };
}

function skipTags(decoder: KafkaDecoder): void {
  const count = decoder.readUVarInt();
  for (let i = 0; i < count; i++) {
    decoder.readUVarInt();
    decoder.readBytes(decoder.readUVarInt());
  }
}

function compactArray<T>(decoder: KafkaDecoder, read: () => T): T[] {
  const length = decoder.readUVarInt() - 1;
  const items: T[] = [];
  for (let i = 0; i < length; i++) items.push(read());
  return items;
}

/** Topic name → id (hex) from a Metadata v12 answer; topics the broker does not know are left out. */
export function parseTopicIds(payload: Buffer): Map<string, string> {
  const decoder = new Decoder(payload);
  skipTags(decoder); // the flexible response header's tagged fields
  decoder.readInt32(); // throttle_time_ms
  compactArray(decoder, () => {
    decoder.readInt32();
    decoder.readUVarIntString();
    decoder.readInt32();
    decoder.readUVarIntString();
    skipTags(decoder);
  });
  decoder.readUVarIntString(); // cluster_id
  decoder.readInt32(); // controller_id
  const ids = new Map<string, string>();
  compactArray(decoder, () => {
    const error = decoder.readInt16();
    const name = decoder.readUVarIntString();
    const id = decoder.readBytes(16).toString('hex');
    decoder.readInt8(); // is_internal
    compactArray(decoder, () => {
      decoder.readInt16();
      decoder.readInt32();
      decoder.readInt32();
      decoder.readInt32();
      for (let list = 0; list < 3; list++) compactArray(decoder, () => decoder.readInt32());
      skipTags(decoder);
    });
    decoder.readInt32(); // topic_authorized_operations
    skipTags(decoder);
    if (error === 0 && name) ids.set(name, id);
  });
  return ids;
}

export class TopicIds {
  private cluster: BorrowedCluster | null = null;

  constructor(private readonly kafka: Kafka) {}

  /**
   * The ids of these topics now; a topic that does not exist is missing from the map. Throws
   * when the broker cannot be asked (the caller treats ids as unknown).
   */
  async of(topics: readonly string[]): Promise<Map<string, string>> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no topic ids within ${ANSWER_TIMEOUT_MS} ms`)), ANSWER_TIMEOUT_MS);
    });
    try {
      return await Promise.race([this.ask(topics), timeout]);
    } catch (err) {
      // The broker we asked may be gone (killed, failed over): the next call connects afresh,
      // through another broker of the bootstrap list.
      void this.close().catch(() => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private async ask(topics: readonly string[]): Promise<Map<string, string>> {
    const cluster = await this.connected();
    const broker = cluster.brokerPool.seedBroker;
    if (!broker) throw new Error('no broker connection');
    const connection = await broker.connectionPool.getConnection();
    return (await connection.send({
      request: metadataRequest(topics),
      response: { decode: async (payload: Buffer) => payload, parse: async (payload: Buffer) => parseTopicIds(payload) },
    })) as Map<string, string>;
  }

  async close(): Promise<void> {
    const cluster = this.cluster;
    this.cluster = null;
    await cluster?.disconnect();
  }

  private async connected(): Promise<BorrowedCluster> {
    if (this.cluster) return this.cluster;
    const cluster = borrowCluster(this.kafka);
    await cluster.connect();
    this.cluster = cluster;
    return cluster;
  }
}
