import { Model } from 'objection';

/** Base of the generated Objection models; rows are plain data, the repository presents them. */
export class EntityModel extends Model {
  static override get idColumn(): string {
    return 'id';
  }
}
