/**
 * The config files' JSON Schemas, generated from the zod schemas so the two cannot disagree.
 * `node dist/src/config/json-schema.js --write` refreshes schema/client-config.schema.json (and
 * `node dist/src/config/server-config.js --write` schema/server-config.schema.json, through the same
 * helpers); a test checks each committed file is current.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { clientConfigSchema } from './client-config.js';

/** Which config a schema describes: its file is schema/KIND-config.schema.json. */
export type ConfigKind = 'client' | 'server';

/** The JSON Schema text of a config's zod schema, as committed in schema/. */
export function configJsonSchemaText(schema: z.ZodType, kind: ConfigKind): string {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  const out = {
    $schema: json.$schema,
    $id: `https://minitcptunnel.invalid/schema/${kind}-config.schema.json`,
    title: `mtt ${kind} config`,
    ...json,
  };
  return JSON.stringify(out, null, 2) + '\n';
}

/** When the module at `moduleUrl` is run as `node MODULE --write`: writes its kind's schema file. */
export function writeSchemaWhenRun(moduleUrl: string, kind: ConfigKind, text: () => string): void {
  if (process.argv[2] !== '--write' || process.argv[1] !== fileURLToPath(moduleUrl)) return;
  const target = fileURLToPath(new URL(`../../../schema/${kind}-config.schema.json`, import.meta.url));
  writeFileSync(target, text());
  process.stdout.write(`wrote ${target}\n`);
}

/** The JSON Schema text of the client config, as committed in schema/. */
export function clientConfigJsonSchema(): string {
  return configJsonSchemaText(clientConfigSchema, 'client');
}

writeSchemaWhenRun(import.meta.url, 'client', clientConfigJsonSchema);
