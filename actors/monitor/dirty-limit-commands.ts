/**
 * set-vcpu-dirty-limit, cancel-vcpu-dirty-limit and query-vcpu-dirty-limit
 * (QEMU 8.2's system/dirtylimit.c), with QEMU's checks and texts in QEMU's
 * order. QEMU first requires KVM's dirty ring ("dirty page limit feature
 * requires KVM with accelerator property 'dirty-ring-size' set'"); a
 * livemig vCPU counts the pages it dirties itself, so that never applies
 * (actors/guest/dirty-limit.ts). While a dirty-limit migration runs and
 * limits are in force, the limits are the migration's, and these commands
 * refuse to change them (QEMU's dirtylimit_is_allowed).
 */
import { isRunning } from '../../machines/status.js';
import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { NO_ARGUMENTS, qapi } from '../../protocols/qmp/schema.js';
import type { MonitorHost } from './host.js';

/** QEMU's dirtylimit_is_allowed: no change while a migration with dirty-limit holds the limits. */
function allowed(host: MonitorHost): boolean {
  return !(isRunning(host.sourceStatus) && host.options.caps['dirty-limit'] && host.dirtyLimits.inService);
}

/** An absent cpu-index means every vCPU; one outside the guest's is refused with QEMU's text. */
function vcpuOf(host: MonitorHost, cpuIndex: number | bigint | undefined): number | undefined {
  if (cpuIndex === undefined) return undefined;
  if (!host.dirtyLimits.validIndex(cpuIndex)) throw genericError('incorrect cpu index specified');
  return Number(cpuIndex);
}

/** qmp_cancel_vcpu_dirty_limit. */
function cancel(host: MonitorHost, cpuIndex: number | bigint | undefined): void {
  const vcpu = vcpuOf(host, cpuIndex);
  if (!allowed(host)) throw genericError("can't cancel dirty page rate limit while migration is running");
  host.dirtyLimits.cancel(vcpu);
}

export function dirtyLimitCommands(host: MonitorHost): [string, QmpCommand][] {
  return [
    ['set-vcpu-dirty-limit', defineCommand({
      args: qapi.object({ 'cpu-index': qapi.optional(qapi.int), 'dirty-rate': qapi.uint64 }),
      run: (args) => {
        const vcpu = vcpuOf(host, args['cpu-index']);
        if (!allowed(host)) throw genericError("can't set dirty page rate limit while migration is running");
        const quota = BigInt(args['dirty-rate']);
        // A limit of 0 MB/s is QEMU's way of lifting it.
        if (quota === 0n) cancel(host, args['cpu-index']);
        else host.dirtyLimits.set(quota, vcpu);
        return {};
      },
    })],
    ['cancel-vcpu-dirty-limit', defineCommand({
      args: qapi.object({ 'cpu-index': qapi.optional(qapi.int) }),
      run: (args) => {
        cancel(host, args['cpu-index']);
        return {};
      },
    })],
    ['query-vcpu-dirty-limit', defineCommand({
      args: NO_ARGUMENTS,
      run: () => host.dirtyLimits.query(),
    })],
  ];
}
