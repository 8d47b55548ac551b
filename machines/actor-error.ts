/**
 * The text of an invoked actor's failure. xstate turns an exception thrown by
 * a child into an `xstate.error.actor.<id>` event on the parent; the machines
 * record its message as the migration's error.
 */
export function actorErrorText(event: { type: string }): string {
  const error = 'error' in event ? event.error : undefined;
  return error instanceof Error ? error.message : String(error);
}
