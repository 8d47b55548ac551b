/**
 * One livemig instance: one guest and its migration service, like one QEMU
 * process. It wires the guest, both statecharts with the actors that do
 * their work, and the QMP monitor; the monitor's command table comes from
 * whoever starts it (Instance.start's `commands`), which the instance
 * serves as the monitor's host.
 */
import { createActor, type Actor, type ActorRefLike } from 'xstate';
import { destinationMachine, destinationStatus } from '../../machines/destination.js';
import type { IncomingActorCommand, MigrateCommand, MigrationActorCommand } from '../../machines/events.js';
import { refuseMigrateIncoming, refuseMigrateRecover } from '../../machines/refusals.js';
import { sourceMachine, sourceStatus } from '../../machines/source.js';
import { isIdle, isRunning, isSetupOrActive, type MigrationStatus } from '../../machines/status.js';
import type { JsonObject } from '../../protocols/qmp/types.js';
import { tlsClientFor, tlsServerDataFor, tlsServerFor } from '../objects/migration-tls.js';
import { UserObjects } from '../objects/user-objects.js';
import type { QmpCommandTable } from '../../protocols/qmp/command.js';
import { QmpError, genericError } from '../../protocols/qmp/errors.js';
import { COLO_CHECKPOINT_EVENT, KILL_MULTIFD_THREAD_COMMAND, type TraceSide } from '../../protocols/qmp/livemig-extensions.js';
import { formatQmpAddress, isLocalOnly, parseMonitorListen, type MonitorListen } from '../../protocols/qmp/address.js';
import type { TlsServer } from '../../protocols/tls/session.js';
import { QmpServer } from '../../protocols/qmp/server.js';
import { FDSET_PATH, FdSets } from '../../protocols/qmp/fd-sets.js';
import { closeDescriptors } from '../../protocols/fd-passing.js';
import type { DescriptorPaths } from '../../protocols/transport/descriptor-paths.js';
import { IncomingListener } from '../../protocols/transport/incoming.js';
import { multiChannelRefusal, parseMigrationUri, recoveryUriRefusal } from '../../protocols/transport/uri.js';
import { DIRTYLIMIT_CALC_TIME_MS, VcpuDirtyLimits } from '../guest/dirty-limit.js';
import { Guest, type GuestConfig } from '../guest/guest.js';
import type { IncomingEnvironment } from '../incoming/environment.js';
import { incomingActor, type IncomingInfo, type IncomingMigration } from '../incoming/incoming-migration.js';
import { MultifdRecvPool } from '../multifd/recv-pool.js';
import { MultifdSendPool } from '../multifd/send-pool.js';
import type { MigrationCapabilityStatus } from '../options/capabilities.js';
import { MigrationOptions } from '../options/migration-options.js';
import type { MigrateSetParameters } from '../options/parameters.js';
import type { SourceEnvironment } from '../outgoing/environment.js';
import { migrationActor, type SourceMigration } from '../outgoing/source-migration.js';
import { ColoStatus } from '../colo/colo-status.js';
import { GuestNetwork } from '../net/guest-network.js';
import { NetLink, type NetLinkCounters } from '../net/net-link.js';
import { isLoopbackMetrics, parseMetricsAddress } from '../metrics/metrics-address.js';
import { MetricsServer } from '../metrics/metrics-server.js';
import { FailoverPrimaries } from '../guest/failover-primaries.js';
import { SwitchoverAckDevices } from '../guest/switchover-ack-devices.js';
import type { DeviceTiming } from '../guest/device-timing.js';
import { ActorTrace } from './actor-trace.js';
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
  /** --net-out: where the guest's output packets go. */
  netOut?: string;
  /** --colo-digests: every COLO checkpoint works out its RAM digest on both sides. */
  coloDigests?: boolean;
  /** --object: TLS credentials and authorisation objects, created before anything else (QEMU's -object). */
  objects?: JsonObject[];
  /** --nonmigratable-device: devices that cannot be migrated, each a migration blocker. */
  nonMigratableDevices?: string[];
  /** --failover-primary: passthrough devices paired with the guest's NIC, which the guest unplugs for a migration. */
  failoverPrimaries?: DeviceTiming[];
  /** --switchover-ack-device: destination devices that hold the switchover until ready (switchover-ack). */
  switchoverAckDevices?: DeviceTiming[];
  /** --only-migratable (QEMU's): a device that would block migration is refused. */
  onlyMigratable?: boolean;
  /** --fault-injection: the monitor's fault commands act (fault-commands.ts); a test aid. */
  faultInjection?: boolean;
  /** --metrics HOST:PORT: where Prometheus scrapes the migration metrics (beyond loopback only if the CLI's --metrics-remote said so). */
  metrics?: string;
}

/** How an instance is started, beside its configuration. */
export interface InstanceWiring {
  log: Logger;
  /** The monitor's commands, made for this instance (actors/monitor's monitorCommands). */
  commands: (instance: Instance) => QmpCommandTable;
  /** How the process ends (tests pass their own). */
  exit?: (code: number) => void;
}

/** The same program is source or destination. */
export class Instance {
  readonly options = new MigrationOptions();
  readonly source: Actor<typeof sourceMachine>;
  readonly destination: Actor<typeof destinationMachine>;
  readonly qmp: QmpServer;
  /** The last outgoing migration (kept after it ends, for query-migrate). */
  outgoing: SourceMigration | undefined;
  incoming: IncomingMigration | undefined;
  /** QEMU's autostart: false with -S, set by `cont` during inmigrate. */
  private autostart: boolean;
  /** The incoming migration's exit-on-error (QEMU 9.1's migrate-incoming argument). */
  exitOnError = true;
  private shuttingDown: Promise<void> | undefined;
  /** The messages between the instance's actors, for the visualizer (the trace extension). */
  readonly actorTrace = new ActorTrace((ref) => this.rootSide(ref));
  readonly log: Logger;
  private readonly exit: (code: number) => void;
  /** Where the guest's output packets go. */
  readonly network: GuestNetwork;
  /** COLO mode, failover and checkpoint figures (query-colo-status). */
  readonly colo: ColoStatus;
  /** The vCPUs' dirty page rate limits (set-vcpu-dirty-limit, a dirty-limit migration). */
  readonly dirtyLimits: VcpuDirtyLimits;
  /** Failover primaries: unplugged by the guest before its migration (wait-unplug), each unplug an UNPLUG_PRIMARY event. */
  readonly failoverPrimaries = new FailoverPrimaries((id) => this.qmp.emitEvent('UNPLUG_PRIMARY', { 'device-id': id }));
  /** Devices that hold the switchover of a migration into this instance until they are ready (switchover-ack). */
  readonly switchoverAckDevices = new SwitchoverAckDevices();
  /** add-fd's fd sets; a removed descriptor is closed only while the guest runs (QEMU's rule). */
  readonly fdSets = new FdSets(() => this.guest.runState === 'running');
  /** `/dev/fdset/N` paths, opened through the fd sets. */
  private readonly descriptorPaths: DescriptorPaths = (path, direction) => {
    if (!FDSET_PATH.test(path)) return undefined;
    return { fd: this.fdSets.open(path, direction), release: () => this.fdSets.release(path) };
  };
  /** -object / object-add: TLS credentials and authorisation; one a running migration names cannot be deleted. */
  readonly objects = new UserObjects((id) => {
    const params = this.options.params;
    const busy = isSetupOrActive(this.sourceStatus) || isSetupOrActive(this.destinationStatus);
    return busy && (params['tls-creds'] === id || params['tls-authz'] === id);
  });

  private constructor(
    readonly config: InstanceConfig,
    readonly guest: Guest,
    wiring: InstanceWiring,
  ) {
    this.log = wiring.log;
    this.exit = wiring.exit ?? ((code) => process.exit(code));
    this.autostart = !config.paused;
    const log = (message: string, fields?: Record<string, unknown>) => this.log.info(fields ?? {}, message);
    this.network = new GuestNetwork(guest.nic, config.netOut !== undefined ? NetLink.create(config.netOut, log) : undefined);
    this.colo = new ColoStatus((mode, reason) => this.qmp.emitEvent('COLO_EXIT', { mode, reason }));
    // QEMU's vcpu_dirty_rate_stat_collect: x-vcpu-dirty-limit-period while a dirty-limit migration runs.
    this.dirtyLimits = new VcpuDirtyLimits(guest, () =>
      this.options.caps['dirty-limit'] && isRunning(this.sourceStatus) ? Number(this.options.params['x-vcpu-dirty-limit-period']) : DIRTYLIMIT_CALC_TIME_MS);
    const services = {
      guest,
      uuid: config.uuid,
      options: this.options,
      log,
      trace: (from: string, to: string, type: string) => this.actorTrace.message(from, to, type),
      network: this.network,
      colo: this.colo,
      coloDigests: config.coloDigests === true,
      announceColoCheckpoint: (data: Record<string, string | number>) => this.qmp.emitEvent(COLO_CHECKPOINT_EVENT, data),
      descriptorPaths: this.descriptorPaths,
    };
    const sourceEnv: SourceEnvironment = {
      ...services,
      dirtyLimits: this.dirtyLimits,
      failoverPrimaries: this.failoverPrimaries,
      onPass: (pass) => this.migrationEvent('MIGRATION_PASS', { pass }),
      multifdPool: (channels) => this.multifdPool(channels),
      tlsClient: (uri) => tlsClientFor(this.objects, this.options.params, uri),
    };
    const incomingEnv: IncomingEnvironment = {
      ...services,
      autostart: () => this.autostart,
      switchoverAckDevices: this.switchoverAckDevices,
      takeListener: () => this.takeListener(),
      multifdRecvWorkers: (channels) => this.recvPool.take(channels),
      tlsServer: () => tlsServerFor(this.objects, this.options.params),
      tlsServerData: () => tlsServerDataFor(this.objects, this.options.params),
    };
    this.source = createActor(
      sourceMachine.provide({ actors: { migration: migrationActor(sourceEnv, (m) => (this.outgoing = m)) } }),
      { inspect: (e) => this.actorTrace.inspect('source', e) },
    );
    this.destination = createActor(
      destinationMachine.provide({ actors: { incoming: incomingActor(incomingEnv, (m) => (this.incoming = m)) } }),
      { inspect: (e) => this.actorTrace.inspect('destination', e) },
    );
    this.qmp = new QmpServer({ commands: wiring.commands(this) });
  }

  /** Starts the guest, applies --cap/--param, opens the monitors and, with --incoming URI, starts listening. */
  static async start(config: InstanceConfig, wiring: InstanceWiring): Promise<Instance> {
    const runState = config.incoming !== undefined ? 'inmigrate' : config.paused ? 'prelaunch' : 'running';
    const guest = await Guest.create({ ...config.guest, runState });
    const instance = new Instance(config, guest, wiring);
    const log = wiring.log;
    try {
      for (const object of config.objects ?? []) instance.objects.add(object);
      for (const name of config.nonMigratableDevices ?? []) instance.addNonMigratableDevice(name);
      for (const { id, delayMs } of config.failoverPrimaries ?? []) instance.addFailoverPrimary(id, delayMs);
      for (const { id, delayMs } of config.switchoverAckDevices ?? []) instance.switchoverAckDevices.add(id, delayMs);
      for (const set of config.params) instance.options.setParameters(set);
      instance.options.setCapabilities(config.caps, { running: false, incomingStarted: false, warn: (m) => log.warn(m) });
      instance.wireEvents();
      instance.warmMultifd();
      if (config.metrics !== undefined) await instance.startMetrics(config.metrics);
      // Every monitor's credentials are checked before any listens.
      const monitors = config.qmp.map((text) => {
        const monitor = parseMonitorListen(text);
        return { monitor, tls: monitorTls(instance.objects, text, monitor) };
      });
      // -incoming listens before any monitor answers, as in QEMU: a client never sees a destination not yet listening.
      if (config.incoming !== undefined && config.incoming !== 'defer') await instance.startIncoming(config.incoming);
      for (const { monitor, tls } of monitors) {
        const bound = await instance.qmp.listen(formatQmpAddress(monitor.address), { tls });
        log.info({ address: bound, tls: tls !== undefined }, 'QMP monitor listening');
        if (!tls && !isLocalOnly(monitor.address)) {
          log.warn({ address: bound }, 'QMP monitor reachable beyond this host, in plain text, with no authentication: anyone who reaches it can drive the guest and read its memory');
        }
      }
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

  get uuid(): string | undefined {
    return this.config.uuid;
  }

  get sourceError(): string | null {
    return this.source.getSnapshot().context.error;
  }

  get destinationError(): string | null {
    return this.destination.getSnapshot().context.error;
  }

  get networkLink(): NetLinkCounters | undefined {
    return this.network.link?.counters;
  }

  /**
   * A device that cannot be migrated (QEMU's unmigratable vmstate): while
   * it is there, `migrate` is refused with its reason, which blocked-reasons
   * shows. QEMU's refusals of a new blocker: --only-migratable, or a
   * migration under way.
   *
   * @throws QmpError
   */
  addNonMigratableDevice(name: string): void {
    const reason = `State blocked by non-migratable device '${name}'`;
    if (this.config.onlyMigratable) throw genericError(`disallowing migration blocker (--only-migratable) for: ${reason}`);
    if (isRunning(this.sourceStatus)) throw genericError(`disallowing migration blocker (migration in progress) for: ${reason}`);
    if (this.guest.devices.find(name, 0)) throw genericError(`Duplicate device ID '${name}'`);
    this.guest.devices.register({ name, instance: 0, version: 1, nonMigratable: reason, save: () => null, load: () => {} });
  }

  /**
   * A failover primary (QEMU's failover_pair_id): not a blocker, since a
   * migration has the guest unplug it; `unplugDelayMs` is how long the
   * guest's OS takes to (null: it does not by itself).
   *
   * @throws QmpError
   */
  addFailoverPrimary(name: string, unplugDelayMs: number | null): void {
    if (this.guest.devices.find(name, 0) || this.failoverPrimaries.has(name)) throw genericError(`Duplicate device ID '${name}'`);
    this.failoverPrimaries.add(name, unplugDelayMs);
  }

  /** @throws QmpError (DeviceNotFound) when there is no such device */
  removeDevice(name: string): void {
    if (this.failoverPrimaries.remove(name)) return;
    const device = this.guest.devices.find(name, 0);
    if (!device?.nonMigratable || !this.guest.devices.unregister(name, 0)) throw new QmpError('DeviceNotFound', `Device '${name}' not found`);
  }

  get migrationYankable(): boolean {
    return !isIdle(this.sourceStatus) || !isIdle(this.destinationStatus);
  }

  migrationThreads(): { name: string; tid: number }[] {
    return isRunning(this.sourceStatus) ? (this.outgoing?.threads() ?? []) : [];
  }

  killMultifdThread(channel: number): void {
    if (!this.config.faultInjection) throw genericError(`${KILL_MULTIFD_THREAD_COMMAND} injects a fault: only an instance started with --fault-injection accepts it`);
    try {
      const killed = (isRunning(this.sourceStatus) && this.outgoing?.killMultifdThread(channel)) ||
        (!isIdle(this.destinationStatus) && this.incoming?.killMultifdThread(channel));
      if (!killed) throw genericError('No migration with multifd channels is under way here');
    } catch (err) {
      throw err instanceof RangeError ? genericError(err.message) : err;
    }
  }

  yankMigration(): void {
    if (!isIdle(this.sourceStatus)) this.outgoing?.yank();
    if (!isIdle(this.destinationStatus)) this.incoming?.yank();
  }

  incomingInfo(): IncomingInfo | undefined {
    return this.incoming?.info();
  }

  sendToSource(command: MigrateCommand | MigrationActorCommand): void {
    this.source.send(command);
  }

  sendToDestination(command: IncomingActorCommand): void {
    this.destination.send(command);
  }

  setAutostart(on: boolean): void {
    this.autostart = on;
  }

  warn(message: string): void {
    this.log.warn(message);
  }

  /**
   * migrate-incoming / --incoming URI. As in QEMU, the listener is set up
   * before the command returns: a bad URI or an address in use is the
   * command's error and leaves nothing started, so it can be retried.
   *
   * @throws QmpError
   */
  async startIncoming(requested: string, exitOnError = true, resolve: (uri: string) => string = (uri) => uri): Promise<void> {
    const checked = { type: 'migrate-incoming' as const, uri: requested, runState: this.guest.runState };
    const refusal = refuseMigrateIncoming(this.destinationStatus, checked) ?? multiChannelRefusal(requested, this.options.needsSeveralChannels());
    if (refusal) throw genericError(refusal);
    const uri = resolve(requested);
    const event = { ...checked, uri };
    const listener = await this.listenAt(uri).catch((err: unknown) => {
      // A descriptor a getfd name gave is the migration's now: one it cannot use is closed, not left open.
      if (uri !== requested) closeDescriptors([Number(uri.slice('fd:'.length))]);
      throw err;
    });
    if (this.incomingStarted) {
      listener.close();
      throw genericError('The incoming migration has already been started');
    }
    this.exitOnError = exitOnError;
    this.preparedListener = listener;
    this.destination.send(event);
  }

  /**
   * migrate-recover: a paused destination listens at `uri` for the source's
   * new main channel; the listener is up before the command returns.
   *
   * @throws QmpError
   */
  async recoverIncoming(uri: string): Promise<void> {
    const refusal = refuseMigrateRecover(this.destinationStatus) ?? recoveryUriRefusal(uri);
    if (refusal) throw genericError(refusal);
    const listener = await this.listenAt(uri);
    // The pause may have ended (a source reached an earlier address) while this one bound its own.
    const late = refuseMigrateRecover(this.destinationStatus);
    if (late) {
      listener.close();
      throw genericError(late);
    }
    // An earlier migrate-recover's listener not yet handed over goes: this one replaces it.
    this.preparedListener?.close();
    this.preparedListener = listener;
    this.destination.send({ type: 'migrate-recover', uri });
  }

  /**
   * Listens at an incoming URI, TLS if tls-creds is set; a bad URI, a busy
   * address or credentials that cannot serve are the command's error.
   */
  private async listenAt(uri: string): Promise<IncomingListener> {
    try {
      const tls = tlsServerFor(this.objects, this.options.params);
      return await IncomingListener.listen(parseMigrationUri(uri, { direction: 'incoming' }), { tls, descriptorPaths: this.descriptorPaths });
    } catch (err) {
      throw genericError((err as Error).message);
    }
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

  private metrics: MetricsServer | undefined;

  /** --metrics: listens before the monitors do, so the figures are there once an orchestrator can start a migration. */
  private async startMetrics(text: string): Promise<void> {
    const at = parseMetricsAddress(text);
    this.metrics = await MetricsServer.listen(at, this, (message, fields) => this.log.warn(fields ?? {}, message));
    this.log.info({ address: this.metrics.address }, 'metrics endpoint listening (GET /metrics)');
    if (!isLoopbackMetrics(at)) {
      this.log.warn({ address: this.metrics.address }, 'metrics endpoint reachable beyond this host, with no authentication: anyone who reaches it reads the migration figures');
    }
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
    await this.metrics?.close();
    this.network.link?.close();
    this.objects.close();
    this.fdSets.closeAll();
    this.dirtyLimits.close();
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
    const last: Record<'source' | 'destination', MigrationStatus> = { source: 'none', destination: 'none' };
    const onStatus = (side: 'source' | 'destination', status: MigrationStatus, cause: string) => {
      this.log.info({ side, status }, 'migration status');
      this.actorTrace.transition(side, last[side], status, cause, () => (side === 'source' ? this.source : this.destination).getSnapshot().context);
      last[side] = status;
      // QEMU announces an incoming migration's setup whether or not the events capability is on.
      if (side === 'destination' && status === 'setup') this.qmp.emitEvent('MIGRATION', { status });
      else this.migrationEvent('MIGRATION', { status });
      this.metrics?.statusChanged(side, status);
      if (side === 'destination' && status === 'failed') this.incomingFailed();
    };
    const onError = (side: string) => (err: unknown) => this.log.error({ err, side }, 'migration statechart failed');
    this.source.on('status', ({ status, cause }) => onStatus('source', status, cause));
    this.source.subscribe({ error: onError('source') });
    this.destination.on('status', ({ status, cause }) => onStatus('destination', status, cause));
    this.destination.subscribe({ error: onError('destination') });
    this.source.start();
    this.destination.start();
  }

  /** A destination that fails to load exits with status 1 (QEMU), unless exit-on-error is off. */
  private incomingFailed(): void {
    const error = this.destinationError;
    if (!this.exitOnError) return;
    this.log.error({ error }, 'incoming migration failed; exiting');
    process.stderr.write(`livemig: ${error}\n`);
    // Let the source read why, and the MIGRATION event reach the monitors, before the process goes.
    void (this.incoming?.quiesced ?? Promise.resolve()).then(() => setTimeout(() => void this.shutdown(1), 20));
  }

  private rootSide(ref: ActorRefLike): TraceSide | undefined {
    if (ref === this.source) return 'source';
    if (ref === this.destination) return 'destination';
    return undefined;
  }
}



/** The TLS settings of a monitor given `,tls-creds=` (a usage error, as a bad --object is, when they cannot serve). */
function monitorTls(objects: UserObjects, text: string, monitor: MonitorListen): TlsServer | undefined {
  if (monitor.tlsCreds === undefined) return undefined;
  try {
    return tlsServerFor(objects, { 'tls-creds': monitor.tlsCreds, 'tls-authz': monitor.tlsAuthz ?? '' });
  } catch (err) {
    throw genericError(`--qmp ${text}: ${(err as Error).message}`);
  }
}
