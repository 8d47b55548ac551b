/**
 * The actor-trace extension: `__org.livemig_trace {enable}` streams the
 * messages between the instance's actors as `__org.livemig_ACTOR_MESSAGE`
 * events, for the visualizer's actor view.
 *
 * QmpServer only broadcasts events, so while any session has tracing on,
 * every negotiated session receives them (a QMP client ignores events it
 * does not know). Tracing stays on while at least one session that enabled
 * it has not disabled it; when the server has no session left at all, it
 * stops by itself. No listener is attached to the instance's actor trace
 * while tracing is off, so an untraced instance works nothing out.
 */
import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { ACTOR_MESSAGE_EVENT, TRACE_COMMAND, type ActorMessage } from '../../protocols/qmp/livemig-extensions.js';
import { qapi } from '../../protocols/qmp/schema.js';
import type { MonitorHost } from './host.js';

export function traceCommands(host: Pick<MonitorHost, 'actorTrace' | 'qmp'>): [string, QmpCommand][] {
  const tracer = new ActorTracer(host);
  return [
    [TRACE_COMMAND, defineCommand({
      args: qapi.object({ enable: qapi.bool }),
      run: ({ enable }, { sessionId }) => {
        tracer.set(sessionId, enable);
        return {};
      },
    })],
  ];
}

class ActorTracer {
  private readonly sessions = new Set<number>();
  private attached = false;

  constructor(private readonly host: Pick<MonitorHost, 'actorTrace' | 'qmp'>) {}

  set(sessionId: number, enable: boolean): void {
    if (enable) this.sessions.add(sessionId);
    else this.sessions.delete(sessionId);
    if (this.sessions.size > 0 && !this.attached) {
      this.host.actorTrace.on('message', this.onMessage);
      this.attached = true;
    } else if (this.sessions.size === 0 && this.attached) {
      this.detach();
    }
  }

  private detach(): void {
    this.sessions.clear();
    this.host.actorTrace.off('message', this.onMessage);
    this.attached = false;
  }

  private readonly onMessage = (message: ActorMessage): void => {
    // Every session that asked is gone (and with it every other one): nobody listens.
    if (this.host.qmp.sessionCount === 0) {
      this.detach();
      return;
    }
    this.host.qmp.emitEvent(ACTOR_MESSAGE_EVENT, { ...message });
  };
}
