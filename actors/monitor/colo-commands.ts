import { refuseColoCheckpoint, refuseXColoLostHeartbeat } from '../../machines/refusals.js';
import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { EXTENSION_PREFIX, QUERY_COLO_COMMAND } from '../../protocols/qmp/livemig-extensions.js';
import { NO_ARGUMENTS } from '../../protocols/qmp/schema.js';
import type { JsonObject } from '../../protocols/qmp/types.js';
import type { MonitorHost } from './host.js';

/**
 * QEMU's COLO commands (x-colo-lost-heartbeat, query-colo-status) and
 * livemig's: its checkpoint figures, and a checkpoint on demand.
 */
export function coloCommands(host: MonitorHost): [string, QmpCommand][] {
  return [
    ['x-colo-lost-heartbeat', defineCommand({
      args: NO_ARGUMENTS,
      run: () => {
        const refusal = refuseXColoLostHeartbeat(host.sourceStatus, host.destinationStatus);
        if (refusal) throw genericError(refusal);
        // A second one while the first is under way (QEMU's words).
        if (host.colo.failover !== 'none') throw genericError('COLO failover is already activated');
        if (host.sourceStatus === 'colo') host.sendToSource({ type: 'x-colo-lost-heartbeat' });
        else host.sendToDestination({ type: 'x-colo-lost-heartbeat' });
        return {};
      },
    })],
    ['query-colo-status', defineCommand({ args: NO_ARGUMENTS, run: () => host.colo.query() })],
    [`${EXTENSION_PREFIX}colo-checkpoint`, defineCommand({
      args: NO_ARGUMENTS,
      run: () => {
        const refusal = refuseColoCheckpoint(host.sourceStatus);
        if (refusal) throw genericError(refusal);
        host.sendToSource({ type: 'colo-checkpoint' });
        return {};
      },
    })],
    [QUERY_COLO_COMMAND, defineCommand({
      args: NO_ARGUMENTS,
      run: () => {
        const c = host.colo;
        const result: JsonObject = {
          mode: c.mode,
          'last-mode': c.lastMode,
          checkpoints: c.checkpoints,
          'checkpoint-ms-total': c.totalMs,
          'downtime-ms-total': c.totalDowntimeMs,
          'pages-total': c.totalPages,
        };
        if (c.last) {
          const { id, reason, ms, downtimeMs, pages, bytes, digest } = c.last;
          result['last-checkpoint'] = { id, reason, ms, 'downtime-ms': downtimeMs, pages, ...(bytes !== undefined ? { bytes } : {}), ...(digest ? { digest } : {}) };
        }
        if (c.compare) result.compare = { ...c.compare };
        if (c.takeover) result.takeover = { ...c.takeover };
        const link = host.networkLink;
        if (link) result['net-out'] = { ...link };
        return result;
      },
    })],
  ];
}
