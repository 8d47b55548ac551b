// Piscina loads this plain-JS entry point: on Node 20 a worker thread does
// not inherit the `--import tsx` loader, so it registers tsx itself first.
import { register } from 'tsx/esm/api';

register();
const { sendChannel, warm } = await import('./send-channel.ts');
export { sendChannel, warm };
