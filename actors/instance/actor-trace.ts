/**
 * The instance's actor messages as the visualizer draws them: XState's
 * inspection events of both statecharts, the messages between the actors
 * that are not statecharts, and each statechart's status changes with their
 * cause, each named by the side it belongs to.
 * Nothing is worked out while nobody listens, so an untraced instance pays
 * nothing but a listener count.
 */
import { EventEmitter } from 'node:events';
import type { ActorRefLike, InspectionEvent } from 'xstate';
import type { ActorMessage, TraceSide } from '../../protocols/qmp/livemig-extensions.js';
import { traceValue } from './trace-value.js';

// The return path serves both sides; the actor at its other end tells which side a message belongs to.
const SIDE_OF_ACTOR: Readonly<Record<string, TraceSide>> = { migration: 'source', incoming: 'destination' };

export class ActorTrace extends EventEmitter<{ message: [ActorMessage] }> {
  /** @param rootName the side whose root statechart `ref` is, or undefined for a child actor */
  constructor(private readonly rootName: (ref: ActorRefLike) => TraceSide | undefined) {
    super();
  }

  /** An inspection event of one side's statechart. */
  inspect(side: TraceSide, event: InspectionEvent): void {
    if (this.listenerCount('message') === 0 || event.type !== '@xstate.event') return;
    const from = event.sourceRef === undefined ? 'monitor' : this.actorName(event.sourceRef);
    const { type, ...payload } = event.event;
    const message: ActorMessage = { side, from, to: this.actorName(event.actorRef), type, kind: 'event' };
    if (Object.keys(payload).length > 0) message.payload = traceValue(payload);
    this.emit('message', message);
  }

  /** A status change of `side`'s statechart, with the event that made it and the context it has now (read only while someone listens). */
  transition(side: TraceSide, from: string, to: string, cause: string, context: () => unknown): void {
    if (this.listenerCount('message') === 0) return;
    this.emit('message', { side, from, to, type: cause, kind: 'transition', context: traceValue(context()) });
  }

  /** A message between actors that are not statecharts. */
  message(from: string, to: string, type: string): void {
    if (this.listenerCount('message') === 0) return;
    const side = SIDE_OF_ACTOR[from] ?? SIDE_OF_ACTOR[to] ?? 'source';
    this.emit('message', { side, from, to, type, kind: 'message' });
  }

  /** A root statechart is named after its side (its own id is a session id like `x:3`); children by their invoke id. */
  private actorName(ref: ActorRefLike): string {
    // Inspection types the ref narrowly; every ref it reports is an actor with an id.
    return this.rootName(ref) ?? ('id' in ref ? String(ref.id) : ref.sessionId);
  }
}
