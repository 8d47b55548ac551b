/**
 * The actor-trace extension: `__org.livemig_trace {enable}` streams the
 * messages between the instance's actors as `__org.livemig_ACTOR_MESSAGE`
 * events, for the visualizer's actor view.
 *
 * QmpServer only broadcasts events, so while any session has tracing on,
 * every negotiated session receives them (a QMP client ignores events it
 * does not know). Tracing stays on while at least one session that enabled
 * it has not disabled it; when the server has no session left at all, it
 * stops by itself. No listener is attached to the instance's trace while
 * tracing is off, so an untraced instance pays nothing.
 */
import type { ActorRefLike, InspectionEvent } from 'xstate';
import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { qapi } from '../../protocols/qmp/schema.js';
import type { Instance } from '../instance/instance.js';
import { EXTENSION_PREFIX } from './memory-commands.js';

export const TRACE_COMMAND = `${EXTENSION_PREFIX}trace`;
export const ACTOR_MESSAGE_EVENT = `${EXTENSION_PREFIX}ACTOR_MESSAGE`;

export type TraceSide = 'source' | 'destination';

/**
 * One message between actors. `kind` is `event` for an event delivered to a
 * statechart actor (XState inspection; `from` is `monitor` when nothing sent
 * it, i.e. a QMP command), `message` for one between the actors that are not
 * statecharts (the return path).
 */
export interface ActorMessage {
  side: TraceSide;
  from: string;
  to: string;
  type: string;
  kind: 'event' | 'message';
}

// The return path serves both sides; the actor at its other end tells which side a message belongs to.
const SIDE_OF_ACTOR: Readonly<Record<string, TraceSide>> = { migration: 'source', incoming: 'destination' };

export function traceCommands(instance: Instance): [string, QmpCommand][] {
  const tracer = new ActorTracer(instance);
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

  constructor(private readonly instance: Instance) {}

  set(sessionId: number, enable: boolean): void {
    if (enable) this.sessions.add(sessionId);
    else this.sessions.delete(sessionId);
    if (this.sessions.size > 0 && !this.attached) {
      this.instance.trace.on('inspect', this.onInspect);
      this.instance.trace.on('message', this.onMessage);
      this.attached = true;
    } else if (this.sessions.size === 0 && this.attached) {
      this.detach();
    }
  }

  private detach(): void {
    this.sessions.clear();
    this.instance.trace.off('inspect', this.onInspect);
    this.instance.trace.off('message', this.onMessage);
    this.attached = false;
  }

  private readonly onInspect = (side: TraceSide, event: InspectionEvent): void => {
    if (event.type !== '@xstate.event') return;
    const from = event.sourceRef === undefined ? 'monitor' : this.actorName(event.sourceRef);
    this.send({ side, from, to: this.actorName(event.actorRef), type: event.event.type, kind: 'event' });
  };

  private readonly onMessage = (message: { from: string; to: string; type: string }): void => {
    const side = SIDE_OF_ACTOR[message.from] ?? SIDE_OF_ACTOR[message.to] ?? 'source';
    this.send({ side, ...message, kind: 'message' });
  };

  private send(message: ActorMessage): void {
    // Every session that asked is gone (and with it every other one): nobody listens.
    if (this.instance.qmp.sessionCount === 0) {
      this.detach();
      return;
    }
    this.instance.qmp.emitEvent(ACTOR_MESSAGE_EVENT, { ...message });
  }

  /** A root statechart is named after its machine (its own id is a session id like `x:3`); children by their invoke id. */
  private actorName(ref: ActorRefLike): string {
    if (ref === this.instance.source) return 'source';
    if (ref === this.instance.destination) return 'destination';
    // Inspection types the ref narrowly; every ref it reports is an actor with an id.
    return 'id' in ref ? String(ref.id) : ref.sessionId;
  }
}
