import type { Guest } from '../guest/guest.js';
import type { MigrationOptions } from './options.js';
import type { Worker } from 'node:worker_threads';
import type { MultifdSendPool } from '../multifd/send-pool.js';

/** What the migration and incoming actors need of their instance. */
export interface MigrationEnvironment {
  guest: Guest;
  /** The guest's UUID (QEMU's -uuid), for validate-uuid. */
  uuid: string | undefined;
  /** Capabilities and parameters, read live: migrate-set-parameters takes effect on a running migration. */
  options: MigrationOptions;
  /** A dirty-bitmap sync happened (MIGRATION_PASS). */
  onPass(pass: number): void;
  log(message: string, fields?: Record<string, unknown>): void;
  /** Warm multifd sender workers for `channels` channels (kept by the instance between migrations). */
  multifdPool(channels: number): MultifdSendPool;
  /** Idle destination channel threads, one per channel, started ahead when possible; the caller owns them. */
  multifdRecvWorkers(channels: number): Worker[];
  /** A message between actors that are not statecharts (e.g. the return path), for the visualizer. */
  trace(from: string, to: string, type: string): void;
}
