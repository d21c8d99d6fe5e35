// What the deployment lifecycle reads under the subscription rather than under the workspace,
// deployed at the scope of the workspace's subscription (main.bicep, only with lifecycleActions):
// GET /subscriptions/{id}/providers/Microsoft.MachineLearningServices/locations/{region}/...
//   usages                 the quota check before each capacity step (AzureMLLifecycle.quota_usages)
//   vmSizes                the instance type's cores and family (AzureMLLifecycle.vm_size)
//   mfeOperationsStatus/x  the Azure-AsyncOperation URL of an endpoint or deployment PUT, read for
//                          Azure's error once it failed (and polled by azure-ai-ml's own poller)
//   mfeOperationResults/x  the Location URL of a deployment DELETE, the same way
// These are resources of the subscription, so an assignment on the workspace or its resource group
// does not cover them: this role is assigned on the subscription, with read actions only.
// Action strings from Microsoft's "Azure permissions for AI + machine learning" reference
// (MicrosoftDocs/azure-docs articles/role-based-access-control/permissions/ai-machine-learning.md);
// the operation URL's form from azure-ai-ml 1.35.2's captured requests (docs/azure.md).
// API version: Azure/bicep-types-az generated/authorization/microsoft.authorization/2022-04-01/types.md.
targetScope = 'subscription'

param principalId string

var lifecycleLocationActions = [
  'Microsoft.MachineLearningServices/locations/usages/read'
  'Microsoft.MachineLearningServices/locations/vmsizes/read'
  'Microsoft.MachineLearningServices/locations/mfeOperationsStatus/read'
  'Microsoft.MachineLearningServices/locations/mfeOperationResults/read'
]

// One role per identity: two apps in one subscription never share (and overwrite) a definition.
resource locationReader 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, principalId, 'aml-rollout-location-reader')
  properties: {
    roleName: 'aml-rollout Azure ML location reader (${principalId})'
    description: 'Read Azure ML quota usages, VM sizes and the status of endpoint and deployment operations in any region of the subscription.'
    type: 'CustomRole'
    permissions: [
      {
        actions: lifecycleLocationActions
        notActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

resource locationReaderOnSubscription 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, 'aml-rollout-location-reader')
  properties: {
    roleDefinitionId: locationReader.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
