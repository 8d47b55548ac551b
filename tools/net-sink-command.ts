import type { Command } from 'commander';
import { livemigCommand } from './cli-options.js';

/**
 * `livemig net-sink`: the outside world a guest's `--net-out` talks to, for
 * trying COLO or a migration by hand: it prints each rule a sender breaks
 * (a gap, a duplicate, a packet that does not follow) and, every second,
 * what it has received (self-announcements counted apart).
 */
export function netSinkCommand(): Command {
  return livemigCommand('net-sink', 'livemig net-sink')
    .summary("receive and check a guest's output packets (the peer of --net-out)")
    .description("Listens for guests' --net-out links; a new sender takes over from the old one, as a guest that moved or failed over does.")
    .requiredOption('--listen <ADDR>', 'unix:PATH or tcp:HOST:PORT')
    .action(async ({ listen }: { listen: string }) => {
      const { NetSink } = await import('./net-sink.js');
      const sink = await NetSink.listen(listen);
      let reported = 0;
      const report = () => {
        for (const violation of sink.violations.slice(reported)) console.log(`violation: ${violation}`);
        reported = sink.violations.length;
        const last = sink.received.at(-1);
        console.log(JSON.stringify({ received: sink.received.length, 'last-seq': last?.seq ?? 0, senders: sink.connections, announcements: sink.announcements.length, violations: sink.violations.length }));
      };
      const timer = setInterval(report, 1000);
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        process.once(signal, () => {
          clearInterval(timer);
          report();
          void sink.close().then(() => process.exit(sink.violations.length === 0 ? 0 : 1));
        });
      }
    });
}
