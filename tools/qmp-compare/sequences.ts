/**
 * The command sequences the QMP comparison runs against QEMU and against
 * livemig alike: an idle source (`src`) and a destination started to wait
 * for migrate-incoming (`dst`), driven as an orchestrator drives them. Each
 * step's answer, and each side's MIGRATION events, are recorded.
 */

export type Side = 'src' | 'dst';

export type Step =
  /** A command; its answer (return or error) is recorded. */
  | { side: Side; execute: string; arguments?: Record<string, unknown> }
  /** Waits for the side's query-migrate status to be one of these (not recorded). */
  | { side: Side; waitFor: string[] };

export interface Sequence {
  name: string;
  steps: Step[];
}

const query = (side: Side): Step => ({ side, execute: 'query-migrate' });
const migrate = (uri: string): Step => ({ side: 'src', execute: 'migrate', arguments: { uri } });

/** The destination's listening address: `tcp:127.0.0.1:0` binds a free port, shown in query-migrate. */
export const INCOMING_URI = 'tcp:127.0.0.1:0';
/** Where `migrate` steps go: replaced by the destination's bound address when they run. */
export const DESTINATION = '@destination';

/**
 * The commands an orchestrator uses around a migration: query-commands is
 * recorded as which of these exist (QEMU has hundreds more, for devices
 * livemig does not have).
 */
export const MIGRATION_COMMANDS = [
  'migrate', 'migrate-incoming', 'migrate_cancel', 'migrate-continue', 'migrate-pause', 'migrate-recover', 'migrate-start-postcopy',
  'migrate-set-capabilities', 'migrate-set-parameters', 'query-migrate', 'query-migrate-capabilities', 'query-migrate-parameters',
  'query-migrationthreads', 'yank', 'query-yank', 'object-add', 'object-del', 'getfd', 'closefd', 'add-fd', 'remove-fd', 'query-fdsets',
  'calc-dirty-rate', 'query-dirty-rate', 'set-vcpu-dirty-limit', 'cancel-vcpu-dirty-limit', 'query-vcpu-dirty-limit',
  'x-colo-lost-heartbeat', 'query-colo-status', 'query-status', 'stop', 'cont', 'quit', 'qmp_capabilities', 'query-commands', 'query-version',
] as const;

export const SEQUENCES: Sequence[] = [
  {
    name: 'idle queries',
    steps: [query('src'), query('dst'), { side: 'src', execute: 'query-migrate-capabilities' }, { side: 'src', execute: 'query-migrate-parameters' }],
  },
  {
    name: 'commands around a migration',
    steps: [
      { side: 'src', execute: 'query-commands' },
      { side: 'src', execute: 'query-yank' },
      { side: 'src', execute: 'query-migrationthreads' },
      { side: 'src', execute: 'yank', arguments: { instances: [{ type: 'migration' }] } },
      { side: 'src', execute: 'yank', arguments: { instances: [{ type: 'chardev', id: 'nope' }] } },
      { side: 'src', execute: 'yank', arguments: { instances: [{ type: 'migration', id: 'x' }] } },
      { side: 'src', execute: 'yank', arguments: { instances: [] } },
      { side: 'dst', execute: 'migrate-incoming', arguments: { uri: INCOMING_URI } },
      { side: 'dst', execute: 'query-yank' },
    ],
  },
  {
    name: 'malformed and unknown migrate URIs',
    steps: ['tcp:', 'tcp:127.0.0.1', 'tcp:127.0.0.1:', 'tcp::4444', 'tcp:[::1', 'unix:', 'bogus:x', 'rdma:127.0.0.1:4444', 'exec:', 'fd:', 'fd:notanfd']
      .flatMap((uri) => [migrate(uri), { side: 'src', waitFor: ['failed', 'none'] } as Step, query('src')]),
  },
  {
    name: 'postcopy and recovery commands with no migration',
    steps: [
      { side: 'src', execute: 'migrate-start-postcopy' },
      { side: 'src', execute: 'migrate-pause' },
      { side: 'dst', execute: 'migrate-pause' },
      { side: 'dst', execute: 'migrate-recover', arguments: { uri: 'tcp:127.0.0.1:0' } },
      { side: 'src', execute: 'migrate', arguments: { uri: 'tcp:127.0.0.1:9', resume: true } },
      { side: 'src', execute: 'migrate-continue', arguments: { state: 'pre-switchover' } },
      { side: 'src', execute: 'migrate_cancel' },
      { side: 'dst', execute: 'migrate_cancel' },
    ],
  },
  {
    name: 'incoming: listen, the address, a second migrate-incoming',
    steps: [
      { side: 'dst', execute: 'migrate-incoming', arguments: { uri: INCOMING_URI } },
      query('dst'),
      { side: 'dst', execute: 'migrate-incoming', arguments: { uri: INCOMING_URI } },
      query('dst'),
      { side: 'dst', execute: 'migrate-set-capabilities', arguments: { capabilities: [{ capability: 'multifd', state: true }] } },
    ],
  },
  {
    name: 'incoming cancelled on the destination',
    steps: [
      { side: 'dst', execute: 'migrate-incoming', arguments: { uri: INCOMING_URI } },
      { side: 'dst', execute: 'migrate_cancel' },
      query('dst'),
    ],
  },
  {
    name: 'a whole migration',
    steps: [
      { side: 'src', execute: 'migrate-set-capabilities', arguments: { capabilities: [{ capability: 'events', state: true }] } },
      { side: 'dst', execute: 'migrate-set-capabilities', arguments: { capabilities: [{ capability: 'events', state: true }] } },
      { side: 'src', execute: 'migrate-set-parameters', arguments: { 'max-bandwidth': 10 * 1024 * 1024 * 1024 } },
      { side: 'dst', execute: 'migrate-incoming', arguments: { uri: INCOMING_URI } },
      migrate(DESTINATION),
      { side: 'src', waitFor: ['completed', 'failed'] },
      { side: 'dst', waitFor: ['completed', 'failed'] },
      query('src'),
      query('dst'),
      { side: 'src', execute: 'migrate', arguments: { uri: DESTINATION } },
      { side: 'dst', execute: 'migrate-incoming', arguments: { uri: INCOMING_URI } },
    ],
  },
];
