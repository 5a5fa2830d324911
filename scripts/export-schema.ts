/** Writes system/schema/rampart.schema.json from the zod schema (a unit test keeps it current). */
import { writeFileSync } from 'node:fs';
import { configJsonSchema } from '../services/core/schema.ts';

const out = new URL('../system/schema/rampart.schema.json', import.meta.url);
writeFileSync(out, JSON.stringify(configJsonSchema(), null, 2) + '\n');
console.log('wrote system/schema/rampart.schema.json');
