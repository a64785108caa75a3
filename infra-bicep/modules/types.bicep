// Types shared by main.bicep and the modules, so a rule is written once.

metadata name = 'SplitFunctions types'
metadata description = 'Types shared by the SplitFunctions templates.'

@export()
@description('A hospital id: 1-40 lowercase letters, digits and single inner hyphens, starting and ending with a letter or digit (core/Contract/StorageNames.cs rules). The length bounds also keep `h-<id>` within a container name\'s 3-63 characters.')
@minLength(1)
@maxLength(40)
type hospitalIdType = string
