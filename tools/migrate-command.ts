/** `livemig migrate` — written with the precopy issue. */
export async function migrateCommand(_argv: string[]): Promise<number> {
  console.error('livemig migrate: not built yet');
  return 1;
}
