import type { CrudDocs, ResourceHooks } from '../http/crud/resource';
import { problemResponse } from '../docs/problem-responses';
import { ConflictError, ValidationError } from '../http/errors';
import type { RawDataSource } from '../generated';
import type { SourcePurges } from './source-purges';
import type { SourceStore } from './source-store';
import type { SourceRuns } from './source-lifecycle';

const PATH = '/raw-data-sources';

/** The delete's OpenAPI: the `purge` parameter and the 409 a source with data answers. */
export const sourceDeleteDocs: CrudDocs = {
  delete: {
    description:
      'A source that has landed or quarantined records is not deleted unless `purge=true`: the answer is 409 ' +
      'with the counts. With `purge=true` (or when it has no records) the source, its runs, state and ' +
      'schedule go at once (204) and its records are removed by a background job, in small batches.',
    parameters: [
      {
        name: 'purge',
        in: 'query',
        required: false,
        schema: { type: 'string', enum: ['true', 'false'], default: 'false' },
        description: 'Also delete the landed and quarantined records of the source (in the background).',
      },
    ],
    responses: {
      '409': problemResponse(
        409,
        'The source has landed or quarantined records: nothing was deleted. The problem carries landed_records, ' +
          'quarantined_records, runs and purge (the request that deletes it with its data).',
        {
          detail:
            'The source has 1200 landed records, 3 quarantined records and 14 runs; nothing was deleted. To delete it and purge its records, send DELETE /raw-data-sources/5d0c3a7e-2f4b-4c8e-9a1d-6b7e8f9a0b1c?purge=true (the records are removed in the background).',
          landed_records: 1200,
          quarantined_records: 3,
          runs: 14,
          purge: 'DELETE /raw-data-sources/5d0c3a7e-2f4b-4c8e-9a1d-6b7e8f9a0b1c?purge=true',
        },
      ),
    },
  },
};

/**
 * A delete never destroys data silently: a source with landed or quarantined records is refused
 * (409 with the counts) unless `?purge=true`. An accepted delete records the purge before the
 * source row goes (so its records, which no longer cascade, are removed by the worker in batches
 * even if the process dies right after) and notes in the audit row what it purged.
 */
export function sourceDeleteHooks(deps: {
  purges: SourcePurges;
  store: Pick<SourceStore, 'nameOf'>;
  /** Cancels the source's active run before its row (and its runs) go. */
  runs?: SourceRuns;
}): Pick<ResourceHooks<RawDataSource>, 'beforeDelete' | 'docs'> {
  return {
    docs: sourceDeleteDocs,
    async beforeDelete(id, query) {
      const purge = purgeParam(query.purge);
      const name = await deps.store.nameOf(id);
      // No such source: the route answers 404.
      if (name === undefined) return;
      const data = await deps.purges.data(id);
      const records = data.landed_records + data.quarantined_records;
      if (records > 0 && !purge)
        throw new ConflictError(
          `The source has ${data.landed_records} landed records, ${data.quarantined_records} quarantined records ` +
            `and ${data.runs} runs; nothing was deleted. To delete it and purge its records, send ` +
            `DELETE ${PATH}/${id}?purge=true (the records are removed in the background).`,
          undefined,
          { ...data, purge: `DELETE ${PATH}/${id}?purge=true` },
        );
      await deps.purges.request(id, name);
      // While the run still exists: it ends cancelled with its event, and its worker stops now.
      await deps.runs?.cancelActive(id, 'source was deleted');
      return { audit: { purge, ...data } };
    },
  };
}

function purgeParam(value: unknown): boolean {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new ValidationError([{ pointer: 'purge', in: 'query', message: 'must be true or false' }]);
}
