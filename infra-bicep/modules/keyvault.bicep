// Key Vault for the hospitals' key-encryption keys: one secret per hospital and key id, created by the
// onboarding procedure (docs/deploy.md), never by this template (see "Why Bicep creates no keys" there).

metadata name = 'SplitFunctions key vault'
metadata description = 'Key Vault with RBAC authorization, soft delete and purge protection.'

@description('Required. Vault name: 3-24 letters, digits and hyphens, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Optional. Location for the vault.')
param location string = resourceGroup().location

@description('Optional. Tags for the vault.')
param tags object = {}

@description('Optional. Days a deleted vault or secret can be recovered (fixed once the vault exists).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC, not access policies: the function identity gets Key Vault Secrets User (read only).
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // Once on, it cannot be turned off: a deleted vault or key stays recoverable for the retention
    // period, and the vault name stays taken until then (docs/deploy.md, "Tearing down").
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

@description('The vault resource id.')
output resourceId string = vault.id

@description('The vault name.')
output name string = vault.name

@description('The vault URI (SplitFunctions__KeyVaultUri).')
output uri string = vault.properties.vaultUri
