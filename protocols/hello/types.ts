import type { ChannelKind } from './constants.js';

/** The first 32 bytes of every connection. */
export interface ChannelHello {
  version: number;
  kind: ChannelKind;
  /** 0-based index among the channels of this kind. */
  channelId: number;
  /** How many channels of this kind the source opens. */
  channelCount: number;
  /** The guest's UUID; undefined when it has none (sent as zeros). */
  uuid?: string;
}
