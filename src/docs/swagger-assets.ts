/**
 * Asset names the koa2-swagger-ui page asks for → files shipped in swagger-ui-dist. Shared by the
 * route that serves them and the OpenAPI document that lists them.
 */
export const SWAGGER_ASSETS: Readonly<Record<string, { file: string; type: string }>> = {
  'swagger-ui.min.css': { file: 'swagger-ui.css', type: 'text/css' },
  'swagger-ui-bundle.js': { file: 'swagger-ui-bundle.js', type: 'application/javascript' },
  'swagger-ui-standalone-preset.js': {
    file: 'swagger-ui-standalone-preset.js',
    type: 'application/javascript',
  },
  'favicon-32x32.png': { file: 'favicon-32x32.png', type: 'image/png' },
};
