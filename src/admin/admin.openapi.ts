import { ADMIN_QUEUES_PATH } from './admin-board';

/**
 * The job dashboard's entry page. Its own JSON API under /admin/queues/api is Bull Board's (it
 * changes with the library), so only the page is part of this document.
 */
export const adminPaths = {
  [ADMIN_QUEUES_PATH]: {
    get: {
      tags: ['Admin'],
      operationId: 'getJobDashboard',
      summary: 'The job dashboard (Bull Board): every queue, its jobs and schedulers; admin',
      description:
        'An HTML application for operators. Behind HTTP Basic (any user name, an admin API key as password) so ' +
        'a browser prompts; a Bearer key works too. State-changing dashboard requests from another site are 403.',
      security: [{ basic: [] }, { bearer: [] }],
      responses: {
        '200': {
          description: 'The dashboard page',
          content: { 'text/html': { schema: { type: 'string' } } },
        },
      },
    },
  },
};
