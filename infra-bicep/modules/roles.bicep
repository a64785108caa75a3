// Least-privilege roles for the server identity. Built-in role definition ids only (the consistency
// test checks every id against the documented built-in roles).
//   Storage Blob Data Contributor  (account): read/write/delete blobs and take leases (run lock,
//                                             Functions host locks); Owner would add ACL management,
//                                             which nothing here needs.
//   Storage Queue Data Contributor (account): the host receives/deletes `features` messages, creates
//                                             and writes `features-poison`; the function writes
//                                             `replies-<hospital>`.
//   Key Vault Secrets User         (vault):   read the hospitals' key secrets; cannot write or list
//                                             anything else.
//   AcrPull                        (registry): pull the image.

metadata name = 'SplitFunctions server roles'
metadata description = 'Role assignments for the server identity on storage, Key Vault and the registry.'

@description('Required. Principal (object) id of the server identity.')
param principalId string

@description('Required. Storage account name.')
param storageAccountName string

@description('Required. Key Vault name.')
param keyVaultName string

@description('Optional. Registry name; empty when the image comes from elsewhere.')
param registryName string = ''

var roleDefinitionIds = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
}

resource storageAccount 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = if (!empty(registryName)) {
  name: registryName
}

resource blobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, roleDefinitionIds.storageBlobDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'SplitFunctions server: blobs and leases'
  }
}

resource queueData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, roleDefinitionIds.storageQueueDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'SplitFunctions server: features, poison and reply queues'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roleDefinitionIds.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'SplitFunctions server: read hospital keys'
  }
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(registryName)) {
  name: guid(registry.id, principalId, roleDefinitionIds.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.acrPull)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'SplitFunctions server: pull the image'
  }
}
