/** The guest's run states: the subset of QEMU's RunState that livemig has. */
export const RUN_STATES = [
  'prelaunch', 'running', 'paused', 'inmigrate', 'finish-migrate', 'postmigrate', 'colo', 'save-vm', 'shutdown',
] as const;
export type RunState = (typeof RUN_STATES)[number];

/**
 * Allowed transitions, after QEMU's runstate_transitions_def restricted to
 * these states. `shutdown` is reachable from every state (quit ends the guest
 * wherever it is).
 */
const TRANSITIONS: Record<RunState, readonly RunState[]> = {
  prelaunch: ['running', 'finish-migrate', 'inmigrate'],
  running: ['paused', 'finish-migrate', 'save-vm', 'colo'],
  paused: ['running', 'finish-migrate', 'postmigrate', 'prelaunch', 'colo'],
  inmigrate: ['running', 'paused', 'finish-migrate', 'prelaunch', 'postmigrate', 'colo'],
  'finish-migrate': ['running', 'paused', 'postmigrate', 'prelaunch', 'colo'],
  postmigrate: ['running', 'finish-migrate', 'prelaunch'],
  colo: ['running', 'prelaunch'],
  'save-vm': ['running'],
  shutdown: ['paused', 'finish-migrate', 'prelaunch', 'colo'],
};

export class RunStateError extends Error {
  readonly code = 'BAD_RUNSTATE_TRANSITION';
  constructor(readonly from: RunState, readonly to: RunState) {
    super(`invalid runstate transition: '${from}' -> '${to}'`);
  }
}

export function canTransition(from: RunState, to: RunState): boolean {
  return from === to || to === 'shutdown' || TRANSITIONS[from].includes(to);
}

export function isRunState(value: unknown): value is RunState {
  return typeof value === 'string' && (RUN_STATES as readonly string[]).includes(value);
}
