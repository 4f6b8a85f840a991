import type { FromSchema } from 'json-schema-to-ts';
import { problems, type PathItem } from '../docs/openapi';
import { SIGNATURE_FORMAT, SIGNATURE_HEADER } from '../connectors/webhook/webhook-signature';

const errors = problems(400, 401, 404, 409, 413, 415, 503);
errors['401'] = {
  ...errors['401'],
  description:
    'Signature missing, malformed or wrong; its timestamp outside the window; or legacy form while off',
};
errors['409'] = {
  ...errors['409'],
  description:
    'The source is inactive, or this signature was already accepted within the window (replayed-signature)',
};

export const webhookAcceptedSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['received'],
  properties: {
    received: {
      type: 'integer',
      description: 'Records buffered: 1 for an object, the length of an array.',
    },
  },
} as const;
export type WebhookAccepted = FromSchema<typeof webhookAcceptedSchema>;

export const webhookSchemas = { WebhookAccepted: webhookAcceptedSchema };

export const webhookPaths: Record<string, PathItem> = {
  '/webhooks/{source_id}': {
    post: {
      tags: ['Webhooks'],
      operationId: 'receiveWebhook',
      summary: 'Receive a signed payload for a webhook source; the next sync lands it',
      description:
        `No token: the credential is ${SIGNATURE_HEADER}: ${SIGNATURE_FORMAT} (the shared secret is the ` +
        "source's connection string; several v1 entries are allowed, e.g. during a secret rotation). The " +
        "timestamp must be within WEBHOOK_TOLERANCE_SECONDS (default 300) of the receiver's clock, and a " +
        'signature is accepted once: a second delivery of the same signed request is 409. The unstamped ' +
        'sha256=<hex HMAC of the body> form is accepted only with WEBHOOK_LEGACY_SIGNATURES=true. ' +
        'The body is one JSON object (one record) or an array ' +
        'of objects (one record each, stored all or nothing), without Content-Encoding, up to BODY_LIMIT. ' +
        'Unknown, malformed and non-webhook ids all answer 404; an inactive source answers 409 once the ' +
        'signature checks out.',
      security: [],
      parameters: [
        { name: 'source_id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } },
        {
          name: SIGNATURE_HEADER,
          in: 'header',
          required: true,
          schema: {
            type: 'string',
            example: 't=1765112400,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd',
          },
        },
      ],
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: {
              oneOf: [
                { type: 'object', additionalProperties: true },
                { type: 'array', items: { type: 'object', additionalProperties: true } },
              ],
            },
          },
        },
      },
      responses: {
        '202': {
          description: 'Stored durably; landed by the next sync',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/WebhookAccepted' } } },
        },
        ...errors,
      },
    },
  },
};
