import { en } from 'zod/locales';
import { config } from 'zod/mini';

// zod's mini build, for the schemas the agent loads: a tenth of the memory of the classic build,
// whose every schema carries its methods. It has no messages until given a locale; the classic
// build (the API's) sets English for itself.
config(en());

export * from 'zod/mini';
