import { PROTECTED_MODEL_NAME } from '../../core/model-info.ts';
import { infoRoute, type ProtocolDescriptor } from '../../core/protocol.ts';
import type { ProtocolServices } from '../../core/protocol-services.ts';
import { koboldErrorBody } from '../kobold/errors.ts';

/**
 * What other tools probe to find out what this server is: the `/.well-known/serviceinfo` document that
 * KoboldCpp serves and llama-server's `/props`. Open, and left out of the OpenAPI document.
 */
export const discoveryProtocol: ProtocolDescriptor = {
  name: 'discovery',
  tag: 'Discovery',
  pathPrefixes: [],
  errorBody: (error) => koboldErrorBody(error),
  routes: (services) => [
    infoRoute({
      method: 'GET',
      paths: ['/.well-known/serviceinfo'],
      open: true,
      hidden: true,
      handle: () => ({
        version: '0.2',
        software: { name: 'Kindling', version: services.version, repository: '', homepage: '', logo: '' },
        api: {
          koboldai: { name: 'KoboldAI API', rel_url: '/api', documentation: '/api', version: '1.2.5' },
          openai: { name: 'OpenAI API', rel_url: '/v1', documentation: '/api', version: '1' },
        },
      }),
    }),
    infoRoute({
      method: 'GET',
      paths: ['/props'],
      open: true,
      hidden: true,
      handle: ({ anonymous }) => props(services, anonymous),
    }),
  ],
};

/**
 * llama-server's `/props`. An anonymous caller of a protected server sees neither the model's name nor its chat
 * template (which names its family); the context and slot counts are the server's shape, not anyone's activity.
 */
function props(services: ProtocolServices, anonymous: boolean) {
  const { model } = services;
  return {
    chat_template: anonymous ? null : (model.chatTemplate ?? null),
    id: 0,
    id_task: -1,
    total_slots: services.activity().slotCount,
    modalities: { vision: false, audio: false },
    model_path: anonymous ? PROTECTED_MODEL_NAME : model.name,
    build_info: model.engineBuild,
    n_ctx: model.contextSize,
    default_generation_settings: { n_ctx: model.contextSize },
  };
}
