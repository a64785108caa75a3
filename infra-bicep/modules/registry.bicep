// Container registry for the function image (functions/Dockerfile). Admin user off: the function
// identity pulls with AcrPull; people push with `az acr build` or `az acr login` under Entra ID.

metadata name = 'SplitFunctions registry'
metadata description = 'Azure Container Registry without admin user or anonymous pull.'

@description('Required. Registry name: 5-50 letters and digits, globally unique.')
@minLength(5)
@maxLength(50)
param name string

@description('Optional. Location for the registry.')
param location string = resourceGroup().location

@description('Optional. Tags for the registry.')
param tags object = {}

@description('Optional. Registry tier.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param skuName string = 'Basic'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    adminUserEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

@description('The registry resource id.')
output resourceId string = registry.id

@description('The registry name.')
output name string = registry.name

@description('The login server the image reference starts with.')
output loginServer string = registry.properties.loginServer
