// The user-assigned identity the function (or the drain job) runs as. User-assigned rather than
// system-assigned so its roles exist before the app starts and survive re-creating the app.

metadata name = 'SplitFunctions identity'
metadata description = 'User-assigned managed identity for the server.'

@description('Required. Identity name.')
@minLength(3)
@maxLength(128)
param name string

@description('Optional. Location for the identity.')
param location string = resourceGroup().location

@description('Optional. Tags for the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

@description('The identity resource id.')
output resourceId string = identity.id

@description('The identity name.')
output name string = identity.name

@description('The client id (AzureWebJobsStorage__clientId).')
output clientId string = identity.properties.clientId

@description('The principal (object) id role assignments refer to.')
output principalId string = identity.properties.principalId
