/**
 * A migration's figures as `virsh domjobinfo` shows them, read from one
 * query-migrate answer the way libvirt's qemuMonitorJSONGetMigrationStats
 * reads QEMU's: the job's type and operation, times, data and memory
 * processed / remaining / total, bandwidth, dirty rate, pages. The fields
 * carry libvirt's virDomainGetJobStats names (VIR_DOMAIN_JOB_*), so a tool
 * written for `virsh domjobinfo`'s numbers finds them under the same keys.
 */

/** libvirt's virDomainJobType, lower-cased. */
export type JobType = 'none' | 'unbounded' | 'completed' | 'failed' | 'cancelled';

export interface JobInfo {
  type: JobType;
  /** libvirt's VIR_DOMAIN_JOB_OPERATION, for the side asked. */
  operation?: 'outgoing-migration' | 'incoming-migration';
  /** QEMU's MigrationStatus, which domjobinfo does not show (`status` in query-migrate). */
  status?: string;
  time_elapsed?: number;
  data_processed?: number;
  data_remaining?: number;
  data_total?: number;
  memory_processed?: number;
  memory_remaining?: number;
  memory_total?: number;
  /** bytes/s, from QEMU's mbps (10^6 bits/s) as libvirt converts it. */
  memory_bps?: number;
  memory_dirty_rate?: number;
  memory_page_size?: number;
  memory_iteration?: number;
  memory_postcopy_requests?: number;
  memory_constant?: number;
  memory_normal?: number;
  memory_normal_bytes?: number;
  /** Expected while precopy iterates, the real one once the guest has stopped (libvirt's one field for both). */
  downtime?: number;
  setup_time?: number;
  /** livemig's: bytes the multifd channels carried (QEMU's ram.multifd-bytes). */
  memory_multifd_bytes?: number;
  errmsg?: string;
}

const JOB_TYPES: Record<string, JobType> = { completed: 'completed', failed: 'failed', cancelled: 'cancelled', none: 'none' };
/** A destination's query-migrate carries livemig's incoming figures under this key; a source's never does. */
const INCOMING_KEY = '__org.livemig_incoming';

/** The job a query-migrate answer describes. */
export function jobInfo(answer: Record<string, unknown>): JobInfo {
  const status = answer.status as string | undefined;
  const incoming = answer[INCOMING_KEY] as Record<string, number> | undefined;
  const info: JobInfo = { type: status === undefined ? 'none' : (JOB_TYPES[status] ?? 'unbounded') };
  if (status === undefined && incoming === undefined) return info;
  if (incoming !== undefined || answer.ram === undefined && answer['socket-address'] !== undefined) {
    // The destination: what it has received so far.
    info.operation = 'incoming-migration';
    if (status !== undefined) info.status = status;
    if (incoming) {
      info.data_processed = incoming.bytes;
      info.memory_processed = incoming.bytes;
      info.memory_normal = incoming.pages;
      info.memory_constant = incoming['zero-pages'];
      if (incoming['load-time'] !== undefined) info.time_elapsed = incoming['load-time'];
    }
  } else {
    info.operation = 'outgoing-migration';
    info.status = status;
    const ram = answer.ram as Record<string, number> | undefined;
    if (answer['total-time'] !== undefined) info.time_elapsed = answer['total-time'] as number;
    if (ram) {
      info.data_processed = ram.transferred;
      info.data_remaining = ram.remaining;
      info.data_total = ram.total;
      info.memory_processed = ram.transferred;
      info.memory_remaining = ram.remaining;
      info.memory_total = ram.total;
      info.memory_bps = Math.round(((ram.mbps ?? 0) * 1e6) / 8);
      info.memory_dirty_rate = ram['dirty-pages-rate'];
      info.memory_page_size = ram['page-size'];
      info.memory_iteration = ram['dirty-sync-count'];
      info.memory_postcopy_requests = ram['postcopy-requests'];
      info.memory_constant = ram.duplicate;
      info.memory_normal = ram.normal;
      info.memory_normal_bytes = ram['normal-bytes'];
      if ((ram['multifd-bytes'] ?? 0) > 0) info.memory_multifd_bytes = ram['multifd-bytes'];
    }
    const downtime = answer.downtime ?? answer['expected-downtime'];
    if (downtime !== undefined) info.downtime = downtime as number;
    if (answer['setup-time'] !== undefined) info.setup_time = answer['setup-time'] as number;
  }
  if (answer['error-desc'] !== undefined) info.errmsg = answer['error-desc'] as string;
  return info;
}

/** Whether the job is over (or, x-colo, checkpointing for good): --watch stops there. */
export function jobEnded(answer: Record<string, unknown>): boolean {
  return ['completed', 'failed', 'cancelled', 'colo'].includes(answer.status as string);
}

const TYPE_NAMES: Record<JobType, string> = { none: 'None', unbounded: 'Unbounded', completed: 'Completed', failed: 'Failed', cancelled: 'Cancelled' };

/** virsh's vshPrettyCapacity: the largest binary unit under which the value stays at least 1, three decimals. */
function capacity(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(3)} ${units[unit]!}`;
}

/**
 * The screen `virsh domjobinfo` prints for the same job (its labels, order
 * and units; a label wider than virsh's 17-column field pushes its value
 * along, as virsh's printf does), with livemig's status and multifd figure.
 */
export function renderJobInfo(info: JobInfo): string {
  const lines: string[] = [];
  const line = (label: string, value: string | undefined) => {
    if (value !== undefined) lines.push(`${`${label}:`.padEnd(17)} ${value}`);
  };
  const int = (n: number | undefined, unit = '') => (n === undefined ? undefined : `${String(n).padEnd(12)} ${unit}`.trimEnd());
  const size = (n: number | undefined) => (n === undefined ? undefined : capacity(n));
  line('Job type', TYPE_NAMES[info.type]);
  if (info.operation === undefined) return lines.join('\n');
  line('Operation', info.operation === 'outgoing-migration' ? 'Outgoing migration' : 'Incoming migration');
  line('Status', info.status);
  line('Time elapsed', int(info.time_elapsed, 'ms'));
  line('Data processed', size(info.data_processed));
  line('Data remaining', size(info.data_remaining));
  line('Data total', size(info.data_total));
  line('Memory processed', size(info.memory_processed));
  line('Memory remaining', size(info.memory_remaining));
  line('Memory total', size(info.memory_total));
  line('Memory bandwidth', info.memory_bps === undefined ? undefined : `${capacity(info.memory_bps)}/s`);
  line('Dirty rate', int(info.memory_dirty_rate, 'pages/s'));
  line('Page size', int(info.memory_page_size, 'bytes'));
  line('Iteration', int(info.memory_iteration));
  line('Postcopy requests', int(info.memory_postcopy_requests));
  line('Constant pages', int(info.memory_constant));
  line('Normal pages', int(info.memory_normal));
  line('Normal data', size(info.memory_normal_bytes));
  line('Multifd data', size(info.memory_multifd_bytes));
  line(info.type === 'unbounded' ? 'Expected downtime' : 'Total downtime', int(info.downtime, 'ms'));
  line('Setup time', int(info.setup_time, 'ms'));
  line('Error message', info.errmsg);
  return lines.join('\n');
}
