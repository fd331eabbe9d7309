/**
 * The client config's JSON Schema, generated from the zod schema so the two cannot disagree.
 * `node dist/src/config/json-schema.js --write` refreshes schema/client-config.schema.json; a test
 * checks the committed file is current.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { clientConfigSchema } from './client-config.js';

/** The JSON Schema text of the client config, as committed in schema/. */
export function clientConfigJsonSchema(): string {
  const schema = z.toJSONSchema(clientConfigSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  const out = {
    $schema: schema.$schema,
    $id: 'https://minitcptunnel.invalid/schema/client-config.schema.json',
    title: 'mtt client config',
    ...schema,
  };
  return JSON.stringify(out, null, 2) + '\n';
}

if (process.argv[2] === '--write' && process.argv[1] === fileURLToPath(import.meta.url)) {
  const target = fileURLToPath(new URL('../../../schema/client-config.schema.json', import.meta.url));
  writeFileSync(target, clientConfigJsonSchema());
  process.stdout.write(`wrote ${target}\n`);
}
