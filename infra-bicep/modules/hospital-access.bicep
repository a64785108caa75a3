// One hospital's access, for a Microsoft Entra principal the hospital's agent signs in as (a service
// principal with a certificate, usually). Scoped to exactly what the agent touches
// (ARCHITECTURE.md, invariant 6):
//   Storage Blob Data Contributor        on container `h-<hospital>`  (its frames, both directions)
//   Storage Queue Data Message Processor on queue `replies-<hospital>` (peek, receive, delete replies)
//   Storage Queue Data Message Sender    on queue `features`           (add messages only)
// Nothing on `runs`, other hospitals' containers or queues, or Key Vault. The shared key is off on
// the account, so there is no account-key SAS to hand out instead.

import { hospitalIdType } from 'types.bicep'

metadata name = 'SplitFunctions hospital access'
metadata description = 'Role assignments scoped to one hospital container and its queues.'

@description('Required. Storage account name.')
param storageAccountName string

@description('Required. Hospital id (StorageNames rules: 1-40 lowercase letters, digits, single inner hyphens).')
param hospitalId hospitalIdType

@description('Required. Object id of the principal the hospital agent uses.')
param principalId string

@description('Optional. Kind of principal.')
@allowed([
  'ServicePrincipal'
  'Group'
  'User'
])
param principalType string = 'ServicePrincipal'

var roleDefinitionIds = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataMessageProcessor: '8a0f0c08-91a1-4084-bc3d-661d67233fed'
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
}

resource storageAccount 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource container 'containers' existing = {
      name: 'h-${hospitalId}'
    }
  }

  resource queueService 'queueServices' existing = {
    name: 'default'

    resource replies 'queues' existing = {
      name: 'replies-${hospitalId}'
    }

    resource features 'queues' existing = {
      name: 'features'
    }
  }
}

resource containerAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount::blobService::container.id, principalId, roleDefinitionIds.storageBlobDataContributor)
  scope: storageAccount::blobService::container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.storageBlobDataContributor)
    principalId: principalId
    principalType: principalType
    description: 'SplitFunctions hospital ${hospitalId}: its own container'
  }
}

resource repliesAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount::queueService::replies.id, principalId, roleDefinitionIds.storageQueueDataMessageProcessor)
  scope: storageAccount::queueService::replies
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.storageQueueDataMessageProcessor)
    principalId: principalId
    principalType: principalType
    description: 'SplitFunctions hospital ${hospitalId}: its reply queue'
  }
}

resource featuresAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount::queueService::features.id, principalId, roleDefinitionIds.storageQueueDataMessageSender)
  scope: storageAccount::queueService::features
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.storageQueueDataMessageSender)
    principalId: principalId
    principalType: principalType
    description: 'SplitFunctions hospital ${hospitalId}: send to the features queue'
  }
}
