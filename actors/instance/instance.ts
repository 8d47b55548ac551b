import { EventEmitter } from 'node:events';
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import { destinationMachine, destinationStatus } from '../../machines/destination.js';
import { sourceMachine, sourceStatus } from '../../machines/source.js';
import { refuseMigrateIncoming } from '../../machines/refusals.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { IncomingListener } from '../../protocols/transport/incoming.js';
import { parseMigrationUri } from '../../protocols/transport/uri.js';
import type { MigrationStatus } from '../../machines/status.js';
import { QmpServer } from '../../protocols/qmp/server.js';
import { Guest, type GuestConfig } from '../guest/guest.js';
import type { MigrationCapabilityStatus } from '../migration/capabilities.js';
import { incomingActor, type IncomingEnvironment, type IncomingMigration } from '../migration/incoming-migration.js';
import { MigrationOptions } from '../migration/options.js';
import type { MigrateSetParameters } from '../migration/parameters.js';
import { migrationActor, type SourceMigration } from '../migration/source-migration.js';
import { monitorCommands } from '../monitor/commands.js';
import { channelRefusal } from '../monitor/migration-channels.js';
import { MultifdSendPool } from '../multifd/send-pool.js';
import { MultifdRecvPool } from '../multifd/recv-pool.js';
import type { Logger } from './logger.js';

export interface InstanceConfig {
  guest: Omit<GuestConfig, 'runState'>;
  uuid?: string;
  /** -S: start with the guest in prelaunch (and no autostart after an incoming migration). */
  paused: boolean;
  /** --incoming URI | defer. */
  incoming?: string;
  /** QMP monitor addresses (unix:PATH, tcp:HOST:PORT). */
  qmp: string[];
  caps: MigrationCapabilityStatus[];
  params: MigrateSetParameters[];
}

/**
 * One livemig instance: one guest and its migration service, like one QEMU
 * process. The same program is source or destination.
 */
export class Instance {
  readonly options = new MigrationOptions();
  readonly source: Actor<typeof sourceMachine>;
  readonly destination: Actor<typeof destinationMachine>;
  readonly qmp: QmpServer;
  /** The last outgoing migration (kept after it ends, for query-migrate). */
  outgoing: SourceMigration | undefined;
  incoming: IncomingMigration | undefined;
  /** QEMU's autostart: false with -S, set by `cont` during inmigrate. */
  autostart: boolean;
  /** The incoming migration's exit-on-error (QEMU 9.1's migrate-incoming argument). */
  exitOnError = true;
  private shuttingDown: Promise<void> | undefined;
  /**
   * The actor system's messages as they flow, for the visualizer: XState's
   * inspection events of both statecharts, and messages between the actors
   * that are not statecharts (the return path).
   */
  readonly trace = new EventEmitter<{
    inspect: [side: 'source' | 'destination', event: InspectionEvent];
    message: [message: { from: string; to: string; type: string }];
  }>();

  private constructor(
    readonly config: InstanceConfig,
    readonly guest: Guest,
    readonly log: Logger,
    private readonly exit: (code: number) => void,
  ) {
    this.autostart = !config.paused;
    const env: IncomingEnvironment = {
      guest,
      uuid: config.uuid,
      options: this.options,
      onPass: (pass) => this.migrationEvent('MIGRATION_PASS', { pass }),
      log: (message, fields) => log.info(fields ?? {}, message),
      autostart: () => this.autostart,
      takeListener: () => this.takeListener(),
      trace: (from, to, type) => this.trace.emit('message', { from, to, type }),
      multifdPool: (channels) => this.multifdPool(channels),
      multifdRecvWorkers: (channels) => this.recvPool.take(channels),
    };
    this.source = createActor(
      sourceMachine.provide({ actors: { migration: migrationActor(env, (m) => (this.outgoing = m)) } }),
      { inspect: (e) => this.trace.emit('inspect', 'source', e) },
    );
    this.destination = createActor(
      destinationMachine.provide({ actors: { incoming: incomingActor(env, (m) => (this.incoming = m)) } }),
      { inspect: (e) => this.trace.emit('inspect', 'destination', e) },
    );
    this.qmp = new QmpServer({ commands: monitorCommands(this) });
  }

  /** Starts the guest, applies --cap/--param, opens the monitors and, with --incoming URI, starts listening. */
  static async start(config: InstanceConfig, log: Logger, exit: (code: number) => void = (c) => process.exit(c)): Promise<Instance> {
    const runState = config.incoming !== undefined ? 'inmigrate' : config.paused ? 'prelaunch' : 'running';
    const guest = await Guest.create({ ...config.guest, runState });
    const instance = new Instance(config, guest, log, exit);
    try {
      for (const set of config.params) instance.options.setParameters(set);
      instance.options.setCapabilities(config.caps, { running: false, incomingStarted: false, warn: (m) => log.warn(m) });
      instance.wireEvents();
      instance.warmMultifd();
      for (const address of config.qmp) {
        const bound = await instance.qmp.listen(address);
        log.info({ address: bound }, 'QMP monitor listening');
      }
      if (config.incoming !== undefined && config.incoming !== 'defer') await instance.startIncoming(config.incoming);
    } catch (err) {
      await instance.close();
      throw err;
    }
    return instance;
  }

  get sourceStatus(): MigrationStatus {
    return sourceStatus(this.source.getSnapshot());
  }

  get destinationStatus(): MigrationStatus {
    return destinationStatus(this.destination.getSnapshot());
  }

  get incomingStarted(): boolean {
    return this.destinationStatus !== 'none';
  }

  /**
   * migrate-incoming / --incoming URI. As in QEMU, the listener is set up
   * before the command returns: a bad URI or an address in use is the
   * command's error and leaves nothing started, so it can be retried.
   *
   * @throws QmpError
   */
  async startIncoming(uri: string, exitOnError = true): Promise<void> {
    const event = { type: 'migrate-incoming' as const, uri, runState: this.guest.runState };
    const refusal = refuseMigrateIncoming(this.destinationStatus, event) ?? channelRefusal(uri, this.options.caps);
    if (refusal) throw genericError(refusal);
    let listener: IncomingListener;
    try {
      listener = await IncomingListener.listen(parseMigrationUri(uri, { direction: 'incoming' }));
    } catch (err) {
      throw genericError((err as Error).message);
    }
    if (this.incomingStarted) {
      listener.close();
      throw genericError('The incoming migration has already been started');
    }
    this.exitOnError = exitOnError;
    this.preparedListener = listener;
    this.destination.send(event);
  }

  /** The listener migrate-incoming opened, handed to the incoming actor once. */
  takeListener(): IncomingListener | undefined {
    const listener = this.preparedListener;
    this.preparedListener = undefined;
    return listener;
  }

  private preparedListener: IncomingListener | undefined;
  private sendPool: MultifdSendPool | undefined;
  private readonly recvPool = new MultifdRecvPool();

  /** The warm multifd sender workers, made anew when the channel count changed or an abort ended them. */
  multifdPool(channels: number): MultifdSendPool {
    if (this.sendPool?.usable && this.sendPool.channels === channels) return this.sendPool;
    void this.sendPool?.destroy();
    this.sendPool = new MultifdSendPool(channels);
    return this.sendPool;
  }

  /**
   * Warms the multifd channel threads as soon as multifd is on (a source's
   * senders, or a destination's receivers before migrate-incoming), so their
   * start-up is not part of the next migration's setup time.
   */
  warmMultifd(): void {
    if (this.shuttingDown) return;
    if (!this.options.caps.multifd) {
      void this.recvPool.destroy();
      return;
    }
    const channels = this.options.params['multifd-channels'];
    if (this.guest.runState !== 'inmigrate') this.multifdPool(channels);
    else if (!this.incomingStarted) this.recvPool.warm(channels);
  }

  /** MIGRATION and MIGRATION_PASS go out only with the `events` capability, as in QEMU. */
  migrationEvent(name: 'MIGRATION' | 'MIGRATION_PASS', data: Record<string, string | number>): void {
    if (this.options.caps.events) this.qmp.emitEvent(name, data);
  }

  /** `quit`, SIGINT, SIGTERM: close the monitors and sockets, end the vCPUs. */
  shutdown(code = 0): Promise<void> {
    this.shuttingDown ??= this.close().then(() => this.exit(code));
    return this.shuttingDown;
  }

  private async close(): Promise<void> {
    this.source.stop();
    this.destination.stop();
    await this.sendPool?.destroy();
    await this.recvPool.destroy();
    await this.qmp.close();
    await this.guest.destroy();
  }

  private wireEvents(): void {
    const guest = this.guest;
    guest.on('stop', () => this.qmp.emitEvent('STOP'));
    guest.on('resume', () => this.qmp.emitEvent('RESUME'));
    guest.on('error', (err) => {
      this.log.error({ err }, 'a vCPU thread failed');
      void this.shutdown(1);
    });
    const onStatus = (side: 'source' | 'destination', status: MigrationStatus) => {
      this.log.info({ side, status }, 'migration status');
      this.migrationEvent('MIGRATION', { status });
      if (side === 'destination' && status === 'failed') this.incomingFailed();
    };
    const onError = (side: string) => (err: unknown) => this.log.error({ err, side }, 'migration statechart failed');
    this.source.on('status', ({ status }) => onStatus('source', status));
    this.source.subscribe({ error: onError('source') });
    this.destination.on('status', ({ status }) => onStatus('destination', status));
    this.destination.subscribe({ error: onError('destination') });
    this.source.start();
    this.destination.start();
  }

  /** A destination that fails to load exits with status 1 (QEMU), unless exit-on-error is off. */
  private incomingFailed(): void {
    const error = this.destination.getSnapshot().context.error;
    if (!this.exitOnError) return;
    this.log.error({ error }, 'incoming migration failed; exiting');
    process.stderr.write(`livemig: ${error}\n`);
    // Let the source read why, and the MIGRATION event reach the monitors, before the process goes.
    void (this.incoming?.quiesced ?? Promise.resolve()).then(() => setTimeout(() => void this.shutdown(1), 20));
  }
}
